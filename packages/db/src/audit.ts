import {
  type AuditEvent,
  type Bytes32,
  canonicalPayload,
  contentHashOf,
} from '@streamanchor/protocol';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { AuditLogRow, Database } from './schema';

/** prev_hash of the first entry. */
export const AUDIT_GENESIS_HASH: Bytes32 = `0x${'0'.repeat(64)}`;

/** Key of the transaction-scoped advisory lock that serializes appends (any constant works). */
const AUDIT_APPEND_LOCK = 0x5aa0d17;

/** The fields an entry's hash commits to (missing optional fields are null). */
export interface AuditEntryFields {
  seq: number;
  eventId: string;
  at: number;
  kind: string;
  subject: string | null;
  relayId: string | null;
  sessionId: string | null;
  address: string | null;
  details: Record<string, unknown>;
  prevHash: string;
}

/** The RFC 8785 canonical JSON text of an entry: what its entry_hash is the keccak-256 of. */
export function auditEntryText(fields: AuditEntryFields): string {
  return canonicalPayload({
    seq: fields.seq,
    eventId: fields.eventId,
    at: fields.at,
    kind: fields.kind,
    subject: fields.subject,
    relayId: fields.relayId,
    sessionId: fields.sessionId,
    address: fields.address,
    details: fields.details,
    prevHash: fields.prevHash,
  });
}

/** entry_hash = keccak256(utf8(canonical JSON of the entry, prevHash included)). */
export function auditEntryHash(fields: AuditEntryFields): Bytes32 {
  return contentHashOf(auditEntryText(fields));
}

/** An entry's fields as stored (bigints read back as numbers). */
export function auditFieldsOf(row: AuditLogRow): AuditEntryFields {
  return {
    seq: Number(row.seq),
    eventId: row.event_id,
    at: Number(row.at),
    kind: row.kind,
    subject: row.subject,
    relayId: row.relay_id,
    sessionId: row.session_id,
    address: row.address,
    details: parseDetails(row.details),
    prevHash: row.prev_hash,
  };
}

export interface AuditHead {
  seq: number;
  entryHash: Bytes32;
}

export interface AppendResult {
  /** Entries appended by this call (events already in the log are skipped). */
  appended: number;
  /** The head after the append (undefined while the log is empty). */
  head: AuditHead | undefined;
}

/**
 * The one writer of `audit_log`: appends events in order, each entry committing to the
 * previous one's hash. Appends are serialized by a transaction-scoped advisory lock, so the
 * chain never forks (and prev_hash is unique, so a fork could not even be stored); events
 * whose eventId is already in the log are skipped (a retried job appends nothing twice).
 * Runs in its own transaction, or inside `db` when it is one.
 */
export async function appendAudit(
  db: Kysely<Database>,
  events: readonly AuditEvent[],
): Promise<AppendResult> {
  const run = async (trx: Transaction<Database> | Kysely<Database>) => {
    await sql`select pg_advisory_xact_lock(${AUDIT_APPEND_LOCK})`.execute(trx);
    let head = await readHead(trx);
    const ids = [...new Set(events.map((event) => event.eventId))];
    const known = new Set<string>();
    for (let start = 0; start < ids.length; start += 1000) {
      const rows = await trx
        .selectFrom('audit_log')
        .select('event_id')
        .where('event_id', 'in', ids.slice(start, start + 1000))
        .execute();
      for (const row of rows) known.add(row.event_id);
    }
    const rows = [];
    for (const event of events) {
      if (known.has(event.eventId)) continue;
      known.add(event.eventId);
      const fields: AuditEntryFields = {
        seq: (head?.seq ?? 0) + 1,
        eventId: event.eventId,
        at: event.at,
        kind: event.kind,
        subject: event.subject ?? null,
        relayId: event.relayId ?? null,
        sessionId: event.sessionId ?? null,
        address: event.address ?? null,
        // The value as it reads back from jsonb (what the verifier will hash).
        details: JSON.parse(canonicalPayload(event.details ?? {})) as Record<string, unknown>,
        prevHash: head?.entryHash ?? AUDIT_GENESIS_HASH,
      };
      const entryHash = auditEntryHash(fields);
      rows.push({
        seq: fields.seq,
        event_id: fields.eventId,
        at: fields.at,
        kind: fields.kind,
        subject: fields.subject,
        relay_id: fields.relayId,
        session_id: fields.sessionId,
        address: fields.address,
        details: JSON.stringify(fields.details),
        prev_hash: fields.prevHash,
        entry_hash: entryHash,
      });
      head = { seq: fields.seq, entryHash };
    }
    for (let start = 0; start < rows.length; start += 1000) {
      await trx
        .insertInto('audit_log')
        .values(rows.slice(start, start + 1000))
        .execute();
    }
    return { appended: rows.length, head };
  };
  return db.isTransaction ? run(db) : db.transaction().execute(run);
}

/** The last entry of the log, or undefined when it is empty. */
export async function readHead(db: Kysely<Database>): Promise<AuditHead | undefined> {
  const row = await db
    .selectFrom('audit_log')
    .select(['seq', 'entry_hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? { seq: Number(row.seq), entryHash: row.entry_hash as Bytes32 } : undefined;
}

export type AuditChainCheck =
  | { ok: true; entries: number; head: AuditHead | undefined }
  | { ok: false; entries: number; seq: number; reason: string };

/**
 * Recomputes the hash chain from the database, in pages: seq must run 1, 2, 3, …, every
 * prev_hash must be the previous entry_hash and every entry_hash must be the hash of its
 * row. Returns the first broken seq.
 */
export async function verifyAuditChain(
  db: Kysely<Database>,
  { pageSize = 1000 }: { pageSize?: number } = {},
): Promise<AuditChainCheck> {
  let previous: AuditHead | undefined;
  let entries = 0;
  for (;;) {
    const rows = await db
      .selectFrom('audit_log')
      .selectAll()
      .where(sql<boolean>`seq > ${previous?.seq ?? 0}`)
      .orderBy('seq')
      .limit(pageSize)
      .execute();
    if (rows.length === 0) return { ok: true, entries, head: previous };
    for (const row of rows) {
      const fields = auditFieldsOf(row);
      const expectedSeq = (previous?.seq ?? 0) + 1;
      const fail = (reason: string): AuditChainCheck => ({
        ok: false,
        entries,
        seq: expectedSeq,
        reason,
      });
      if (fields.seq !== expectedSeq) return fail(`entry ${expectedSeq} is missing`);
      const expectedPrev = previous?.entryHash ?? AUDIT_GENESIS_HASH;
      if (fields.prevHash !== expectedPrev) {
        return fail(`prev_hash ${fields.prevHash} is not the previous entry_hash ${expectedPrev}`);
      }
      let recomputed: Bytes32;
      try {
        recomputed = auditEntryHash(fields);
      } catch (error) {
        return fail(`entry has no canonical form: ${(error as Error).message}`);
      }
      if (recomputed !== row.entry_hash) {
        return fail(`entry_hash ${row.entry_hash} does not match its contents (${recomputed})`);
      }
      entries += 1;
      previous = { seq: fields.seq, entryHash: recomputed };
    }
  }
}

function parseDetails(value: unknown): Record<string, unknown> {
  const parsed = typeof value === 'string' ? JSON.parse(value) : value;
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : {};
}
