import { streamAnchorAbi } from '@streamanchor/contracts';
import {
  type AuditHead,
  BatchRootMismatchError,
  type Database,
  readBatchContent,
  verifyAuditChain,
} from '@streamanchor/db';
import { contentHashOf } from '@streamanchor/protocol';
import { type Kysely, sql } from 'kysely';
import type { Address, Hex, PublicClient } from 'viem';

export interface VerifyAuditDeps {
  db: Kysely<Database>;
  publicClient: Pick<PublicClient, 'readContract'>;
  /** The StreamAnchor contract the heads were anchored on. */
  contract: Address;
  /** Fail unless every anchored head's batch is `final` (default: `included` or anchored is enough). */
  requireFinal?: boolean;
}

export type AuditVerification =
  | {
      ok: true;
      entries: number;
      head: AuditHead | undefined;
      /** Heads whose record verified on chain (`verifyRecord`). */
      anchored: number;
      /** Of those, in a `final` batch. */
      final: number;
      /** Heads queued for anchoring, not on chain yet (not a failure). */
      pending: number;
      /** The highest seq proven on chain. */
      lastAnchoredSeq: number | undefined;
    }
  | { ok: false; seq: number; reason: string };

/**
 * Verifies the audit log: recomputes the hash chain (`verifyAuditChain`), then checks each
 * anchored head: its record carries the entry's hash (content_hash = entry_hash =
 * keccak256(payload)), and the contract's `verifyRecord` accepts the record's fields and proof
 * (rebuilt from the batch's stored records) for its batch. A head whose batch is not mined
 * yet is pending. Returns the first broken seq.
 */
export async function verifyAudit(deps: VerifyAuditDeps): Promise<AuditVerification> {
  const chain = await verifyAuditChain(deps.db);
  if (!chain.ok) return { ok: false, seq: chain.seq, reason: chain.reason };
  const anchors = await deps.db
    .selectFrom('audit_anchors')
    .innerJoin('audit_log', 'audit_log.seq', 'audit_anchors.seq')
    // The view gives the record with its batch and leaf (null while in no batch).
    .leftJoin('record_leaves as records', 'records.record_id', 'audit_anchors.record_id')
    .leftJoin('batches', 'batches.batch_id', 'records.batch_id')
    .select([
      'audit_anchors.seq as seq',
      'audit_anchors.entry_hash as anchor_hash',
      'audit_log.entry_hash as entry_hash',
      'records.record_id as record_id',
      'records.topic as topic',
      'records.subject as subject',
      'records.content_hash as content_hash',
      'records.accepted_at as accepted_at',
      'records.payload as payload',
      'records.batch_id as batch_id',
      'records.leaf_index as leaf_index',
      'batches.status as status',
    ])
    .orderBy(sql`audit_anchors.seq`)
    .execute();
  let anchored = 0;
  let final = 0;
  let pending = 0;
  let lastAnchoredSeq: number | undefined;
  for (const row of anchors) {
    const seq = Number(row.seq);
    const fail = (reason: string): AuditVerification => ({ ok: false, seq, reason });
    if (row.anchor_hash !== row.entry_hash)
      return fail('audit_anchors.entry_hash differs from the entry');
    if (!row.record_id) return fail('the anchored head has no record');
    if (row.content_hash !== row.entry_hash)
      return fail('the head record does not carry the entry hash');
    if (row.payload === null || contentHashOf(row.payload) !== row.content_hash) {
      return fail('the head record payload does not hash to its content hash');
    }
    if (!row.batch_id || row.status === 'built' || row.status === null) {
      pending += 1;
      continue;
    }
    // The head's proof, from its batch's tree rebuilt over the stored records.
    let proof: Hex[];
    try {
      const { rows } = await readBatchContent(deps.db, row.batch_id);
      proof = [...(rows[row.leaf_index ?? -1]?.proof ?? [])];
    } catch (error) {
      if (error instanceof BatchRootMismatchError)
        return fail(`batch ${row.batch_id}: ${error.shortMessage}`);
      throw error;
    }
    const onChain = await deps.publicClient.readContract({
      address: deps.contract,
      abi: streamAnchorAbi,
      functionName: 'verifyRecord',
      args: [
        row.batch_id as Hex,
        proof,
        row.record_id as Hex,
        row.topic!,
        row.subject!,
        row.content_hash as Hex,
        BigInt(row.accepted_at!),
      ],
    });
    if (!onChain) {
      // A tx sent but not mined yet proves nothing either way; an included one must verify.
      if (row.status === 'sent') {
        pending += 1;
        continue;
      }
      return fail(`verifyRecord is false for batch ${row.batch_id} (status ${row.status})`);
    }
    if (deps.requireFinal && row.status !== 'final') {
      return fail(`batch ${row.batch_id} is ${row.status}, not final`);
    }
    anchored += 1;
    if (row.status === 'final') final += 1;
    lastAnchoredSeq = seq;
  }
  return {
    ok: true,
    entries: chain.entries,
    head: chain.head,
    anchored,
    final,
    pending,
    lastAnchoredSeq,
  };
}
