import {
  type AuditHead,
  auditEntryText,
  auditFieldsOf,
  type Database,
  readAuditHead,
} from '@streamanchor/db';
import { AUDIT_TOPIC, type Bytes32, contentHashOf } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import { createLoop, type Loop } from '@streamanchor/service-kit';
import { type Kysely, sql } from 'kysely';

/** The audit head is anchored as a record of this reserved topic (see its definition). */
export { AUDIT_TOPIC };
export const AUDIT_SUBJECT = 'streamanchor-audit';
/** relay_id and session_id of head records (no relay holds this session). */
export const AUDIT_RELAY_ID = 'chain-writer.audit';
export const AUDIT_SESSION_ID = 'streamanchor-audit-log';

/** The record id of the anchor of head `seq`: keccak256(utf8("streamanchor-audit-head:" + seq)). */
export function auditAnchorRecordId(seq: number): Bytes32 {
  return contentHashOf(`streamanchor-audit-head:${seq}`);
}

export interface AnchoredHead extends AuditHead {
  recordId: Bytes32;
}

/**
 * Anchors the current audit head if it is newer than the last anchored one: in one
 * transaction, inserts the head as a record (topic `_audit`, payload = the entry's canonical
 * JSON, so contentHash = keccak256(payload) = entry_hash; acceptedAt = the entry's `at`;
 * recordId derived from seq) and notes it in `audit_anchors`. The normal batch, anchor and
 * receipt path does the rest. Idempotent: a second writer or a retry inserts nothing.
 */
export async function anchorAuditHead(db: Kysely<Database>): Promise<AnchoredHead | undefined> {
  return db.transaction().execute(async (trx) => {
    const head = await readAuditHead(trx);
    if (!head) return undefined;
    const last = await trx
      .selectFrom('audit_anchors')
      .select(sql<string | number | null>`max(seq)`.as('seq'))
      .executeTakeFirst();
    if (last?.seq != null && Number(last.seq) >= head.seq) return undefined;
    const row = await trx
      .selectFrom('audit_log')
      .selectAll()
      .where(sql<boolean>`seq = ${head.seq}`)
      .executeTakeFirstOrThrow();
    const payload = auditEntryText(auditFieldsOf(row));
    const contentHash = contentHashOf(payload);
    if (contentHash !== row.entry_hash) {
      throw new Error(
        `audit entry ${head.seq} does not hash to its entry_hash: refusing to anchor`,
      );
    }
    const recordId = auditAnchorRecordId(head.seq);
    await trx
      .insertInto('records')
      .values({
        record_id: recordId,
        topic: AUDIT_TOPIC,
        subject: AUDIT_SUBJECT,
        content_hash: contentHash,
        accepted_at: Number(row.at),
        payload,
        relay_id: AUDIT_RELAY_ID,
        session_id: AUDIT_SESSION_ID,
      })
      .onConflict((conflict) => conflict.column('record_id').doNothing())
      .execute();
    const inserted = await trx
      .insertInto('audit_anchors')
      .values({ seq: head.seq, entry_hash: head.entryHash, record_id: recordId })
      .onConflict((conflict) => conflict.column('seq').doNothing())
      .returning('seq')
      .execute();
    return inserted.length > 0 ? { ...head, recordId } : undefined;
  });
}

export interface AuditAnchorerDeps {
  db: Kysely<Database>;
  logger: Logger;
  /** AUDIT_ANCHOR_INTERVAL_MS. */
  intervalMs: number;
  /** Called when a head was queued for anchoring (wakes the batcher). */
  onAnchored?: (head: AnchoredHead) => void;
}

/** Every `intervalMs`, anchors the audit head when it moved (`anchorAuditHead`). */
export function createAuditAnchorer(deps: AuditAnchorerDeps): Loop {
  const logger = deps.logger.child({ subsystem: 'audit-anchor' });
  return createLoop('audit-anchor', logger, deps.intervalMs, async () => {
    const anchored = await anchorAuditHead(deps.db);
    if (!anchored) return undefined;
    logger.info(
      { seq: anchored.seq, entryHash: anchored.entryHash, recordId: anchored.recordId },
      'audit head queued for anchoring',
    );
    deps.onAnchored?.(anchored);
    return undefined;
  });
}
