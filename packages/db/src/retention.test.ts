import { AUDIT_TOPIC, buildMerkleTree, contentHashOf, type Hex } from '@streamanchor/protocol';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { DatabaseHandle } from './database';
import { recordById, topicRecordsAfter } from './history';
import { createBatchLedger, readBatchContent } from './ledger';
import { pruneRecordPayloads } from './retention';
import { createTestDatabase, TEST_DATABASE_KINDS } from './testing';

const hex = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
const scope = { chainId: 31337, contract: `0x${'ab'.repeat(20)}`, finalityDepth: 3 };
const DAY = 86_400_000;
const NOW = new Date('2026-03-01T00:00:00Z');
/** The retention's cutoff in these tests: 30 days before NOW. */
const BEFORE = new Date(NOW.getTime() - 30 * DAY);

describe.each(TEST_DATABASE_KINDS)('payload retention on %s', (kind) => {
  let handle: DatabaseHandle;
  beforeEach(async () => {
    handle = await createTestDatabase(kind);
  });
  afterEach(() => handle.close());

  const ledger = () => createBatchLedger(handle.db, scope);

  /**
   * Stores `count` records of `topic` (positions after `firstPosition`) in one batch, stamped
   * with their real tree's leaves, built `ageDays` days before NOW; `final` makes it final.
   */
  async function batch(
    n: number,
    {
      topic = 'demo',
      count = 3,
      ageDays,
      status,
    }: {
      topic?: string;
      count?: number;
      ageDays: number;
      status: 'built' | 'sent' | 'included' | 'final';
    },
  ) {
    const rows = Array.from({ length: count }, (_, i) => {
      const payload = JSON.stringify({ batch: n, i });
      return {
        record_id: hex(n * 100 + i),
        topic,
        subject: 'alice',
        content_hash: contentHashOf(payload),
        accepted_at: NOW.getTime() - ageDays * DAY - 1000 + i,
        payload,
        relay_id: 'relay-1',
        session_id: 'AAAAAAAAAAAAAAAAAAAAAA',
        position: topic === AUDIT_TOPIC ? null : n * 100 + i + 1,
      };
    });
    const tree = await buildMerkleTree(
      rows.map((row) => ({
        recordId: row.record_id as Hex,
        topic: row.topic,
        subject: row.subject,
        contentHash: row.content_hash as Hex,
        acceptedAt: row.accepted_at,
      })),
    );
    const batchId = hex(9000 + n);
    await handle.db.insertInto('records').values(rows).execute();
    await handle.db.transaction().execute((trx) =>
      createBatchLedger(trx, scope).createBatch(
        { batchId, merkleRoot: tree.root, recordCount: count },
        rows.map((row, leafIndex) => ({
          recordId: row.record_id,
          leafIndex,
          leafHash: tree.leafHashes[leafIndex]!,
        })),
      ),
    );
    if (status !== 'built') {
      await ledger().recordSigned(batchId, {
        signer: `0x${'cd'.repeat(20)}`,
        nonce: n,
        rawTx: `0x${n.toString(16).padStart(2, '0')}`,
        txHash: hex(7000 + n),
      });
    }
    if (status === 'included' || status === 'final') {
      const anchoring = {
        batchId,
        txHash: hex(7000 + n),
        blockNumber: BigInt(10 + n),
        blockHash: hex(8000 + n),
        logIndex: 0,
      };
      await ledger().markIncluded([anchoring], status === 'final' ? 1000n : BigInt(10 + n));
    }
    const createdAt = new Date(NOW.getTime() - ageDays * DAY).toISOString();
    await sql`update batches set created_at = ${createdAt}::timestamptz where batch_id = ${batchId}`.execute(
      handle.db,
    );
    return { batchId, root: tree.root, recordIds: rows.map((row) => row.record_id) };
  }

  const payloadsOf = async (batchId: string) =>
    (
      await handle.db
        .selectFrom('record_leaves')
        .select('payload')
        .where('batch_id', '=', batchId)
        .orderBy('leaf_index')
        .execute()
    ).map((row) => row.payload);

  const prune = (options: { maxBatches?: number; before?: Date } = {}) =>
    pruneRecordPayloads(handle.db, {
      chainId: scope.chainId,
      contract: scope.contract,
      before: BEFORE,
      ...options,
    });

  test('default: payloads of final batches older than the retention become NULL; proofs and roots still rebuild', async () => {
    const old = await batch(1, { ageDays: 40, status: 'final' });
    const young = await batch(2, { ageDays: 10, status: 'final' });
    const before = await readBatchContent(handle.db, old.batchId);

    expect(await prune()).toEqual({ batches: 1, records: 3, more: false });
    expect(await payloadsOf(old.batchId)).toEqual([null, null, null]);
    expect(await payloadsOf(young.batchId)).toEqual([
      '{"batch":2,"i":0}',
      '{"batch":2,"i":1}',
      '{"batch":2,"i":2}',
    ]);

    // The tree is rebuilt from content_hash, not payload: same root, same proofs.
    const after = await readBatchContent(handle.db, old.batchId);
    expect(after.merkleRoot).toBe(old.root);
    expect(after.rows.map((row) => row.proof)).toEqual(before.rows.map((row) => row.proof));
    const lookup = await ledger().lookupRecord(old.recordIds[0]!);
    expect(lookup).toMatchObject({ state: 'anchored', receipt: { merkleRoot: old.root } });

    // History serves the pruned records with payload null, and keeps the rest of them.
    const history = await topicRecordsAfter(handle.db, { topic: 'demo', after: 0, limit: 10 });
    expect(history.map((r) => [r.position, r.payload])).toEqual([
      [101, null],
      [102, null],
      [103, null],
      [201, '{"batch":2,"i":0}'],
      [202, '{"batch":2,"i":1}'],
      [203, '{"batch":2,"i":2}'],
    ]);
    expect(await recordById(handle.db, old.recordIds[1]!)).toMatchObject({
      position: 102,
      payload: null,
      batchId: old.batchId,
      contentHash: contentHashOf('{"batch":1,"i":1}'),
    });

    // Nothing more to do: a second call changes nothing.
    expect(await prune()).toEqual({ batches: 0, records: 0, more: false });
  });

  test('behavior: the walk stops at a batch that is not final yet, and resumes there once it is', async () => {
    const first = await batch(1, { ageDays: 50, status: 'final' });
    const stuck = await batch(2, { ageDays: 45, status: 'included' });
    const third = await batch(3, { ageDays: 40, status: 'final' });

    expect(await prune()).toEqual({
      batches: 1,
      records: 3,
      more: false,
      blockedBy: { batchId: stuck.batchId, status: 'included' },
    });
    expect(await payloadsOf(third.batchId)).not.toContain(null);

    await ledger().finalize(1000n);
    expect(await prune()).toEqual({ batches: 2, records: 6, more: false });
    for (const { batchId } of [first, stuck, third])
      expect(await payloadsOf(batchId)).toEqual([null, null, null]);
  });

  test('behavior: batches built or sent (never anchored) are never pruned', async () => {
    const built = await batch(1, { ageDays: 40, status: 'built' });
    const sent = await batch(2, { ageDays: 40, status: 'sent' });
    expect(await prune()).toMatchObject({
      batches: 0,
      blockedBy: { batchId: built.batchId, status: 'built' },
    });
    expect(await payloadsOf(built.batchId)).not.toContain(null);
    expect(await payloadsOf(sent.batchId)).not.toContain(null);
  });

  test('behavior: maxBatches bounds one call; the cursor lets the next go on (and survives a new process)', async () => {
    for (let n = 1; n <= 5; n++) await batch(n, { ageDays: 60 - n, status: 'final' });
    expect(await prune({ maxBatches: 2 })).toEqual({ batches: 2, records: 6, more: true });
    const cursor = await handle.db
      .selectFrom('payload_prune_cursors')
      .select(['chain_id', 'contract', 'batch_seq'])
      .execute();
    expect(cursor.map((row) => ({ ...row, batch_seq: Number(row.batch_seq) }))).toEqual([
      { chain_id: scope.chainId, contract: scope.contract, batch_seq: 2 },
    ]);

    // A payload of an already-pruned batch that reappeared (say, restored by hand) stays: the
    // walk goes on after the cursor and never rescans.
    await sql`update records set payload = '{"restored":true}' where record_id = ${hex(101)}`.execute(
      handle.db,
    );
    expect(await prune({ maxBatches: 2 })).toEqual({ batches: 2, records: 6, more: true });
    expect(await prune({ maxBatches: 2 })).toEqual({ batches: 1, records: 3, more: false });
    expect((await recordById(handle.db, hex(101)))?.payload).toBe('{"restored":true}');
    expect((await recordById(handle.db, hex(501)))?.payload).toBeNull();
  });

  test('behavior: the audit log’s head records keep their payloads (audit:verify reads them)', async () => {
    const audit = await batch(1, { topic: AUDIT_TOPIC, count: 1, ageDays: 40, status: 'final' });
    const demo = await batch(2, { ageDays: 40, status: 'final' });
    expect(await prune()).toEqual({ batches: 2, records: 3, more: false });
    expect(await payloadsOf(audit.batchId)).toEqual(['{"batch":1,"i":0}']);
    expect(await payloadsOf(demo.batchId)).toEqual([null, null, null]);
  });

  test('behavior: only the given chain and contract’s batches are walked', async () => {
    const ours = await batch(1, { ageDays: 40, status: 'final' });
    const other = await pruneRecordPayloads(handle.db, {
      chainId: 1,
      contract: scope.contract,
      before: BEFORE,
    });
    expect(other).toEqual({ batches: 0, records: 0, more: false });
    expect(await payloadsOf(ours.batchId)).not.toContain(null);
  });

  test('error: maxBatches below 1 is refused', async () => {
    await expect(prune({ maxBatches: 0 })).rejects.toThrow(
      'maxBatches must be a positive integer, not 0',
    );
  });
});
