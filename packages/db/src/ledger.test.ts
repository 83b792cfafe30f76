import { buildMerkleTree, type Hex, type MerkleTree } from '@streamanchor/protocol';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { DatabaseHandle } from './database';
import { type Anchoring, type BatchLedger, confirmationsAt, createBatchLedger } from './ledger';
import { createTestDatabase, TEST_DATABASE_KINDS } from './testing';

const hex = (byte: number) => `0x${byte.toString(16).padStart(2, '0').repeat(32)}`;
const scope = { chainId: 31337, contract: `0x${'ab'.repeat(20)}`, finalityDepth: 3 };
const SESSION_A = 'AAAAAAAAAAAAAAAAAAAAAA';
const SESSION_B = 'BBBBBBBBBBBBBBBBBBBBBB';

describe.each(TEST_DATABASE_KINDS)('batch ledger on %s', (kind) => {
  let handle: DatabaseHandle;
  let ledger: BatchLedger;

  beforeEach(async () => {
    handle = await createTestDatabase(kind);
    ledger = createBatchLedger(handle.db, scope);
  });
  afterEach(() => handle.close());

  /** The trees of the batches builtBatch made, by batch id. */
  const trees = new Map<string, MerkleTree>();

  /** Two stored records in one built batch, stamped with the leaves of their real tree. */
  async function builtBatch(
    batchByte: number,
    sessionIds: [string, string] = [SESSION_A, SESSION_A],
  ): Promise<string> {
    const batchId = hex(batchByte);
    const rows = [hex(batchByte * 2 + 100), hex(batchByte * 2 + 101)].map((recordId, i) => ({
      record_id: recordId,
      topic: 'demo',
      subject: 'alice',
      content_hash: hex(7),
      accepted_at: 1_700_000_000_000 + i,
      payload: '{}',
      relay_id: 'relay-1',
      session_id: sessionIds[i]!,
    }));
    const tree = await buildMerkleTree(
      rows.map((row) => ({
        recordId: row.record_id as Hex,
        topic: row.topic,
        subject: row.subject,
        contentHash: row.content_hash as Hex,
        acceptedAt: row.accepted_at,
      })),
    );
    trees.set(batchId, tree);
    await handle.db.insertInto('records').values(rows).execute();
    await handle.db.transaction().execute((tx) =>
      createBatchLedger(tx, scope).createBatch(
        { batchId, merkleRoot: tree.root, recordCount: 2 },
        rows.map((row, leafIndex) => ({
          recordId: row.record_id,
          leafIndex,
          leafHash: tree.leafHashes[leafIndex]!,
        })),
      ),
    );
    return batchId;
  }
  const proofOf = (batchId: string, leafIndex: number) => trees.get(batchId)!.proof(leafIndex);

  const batch = (batchId: string) =>
    handle.db
      .selectFrom('batches')
      .selectAll()
      .where('batch_id', '=', batchId)
      .executeTakeFirstOrThrow();
  const notices = () =>
    handle.db
      .selectFrom('receipt_notices')
      .select(['batch_id', 'revision', 'status', 'block_hash', 'confirmations'])
      .orderBy('id')
      .execute();
  const anchoring = (batchId: string, block: number, hashByte: number): Anchoring => ({
    batchId,
    txHash: hex(60),
    blockNumber: BigInt(block),
    blockHash: hex(hashByte),
    logIndex: 0,
  });
  const signed = { signer: `0x${'cd'.repeat(20)}`, nonce: 0, rawTx: '0x01', txHash: hex(60) };

  test('default: built → sent → included → final, one notice per change', async () => {
    const id = await builtBatch(1);
    expect((await batch(id)).status).toBe('built');
    expect(await ledger.recordSigned(id, signed)).toBe(true);
    expect(await batch(id)).toMatchObject({ status: 'sent', raw_tx: '0x01', revision: 0 });

    expect(await ledger.markIncluded([anchoring(id, 10, 0xa0)], 10n)).toEqual([id]);
    expect(await batch(id)).toMatchObject({
      status: 'included',
      revision: 1,
      block_hash: hex(0xa0),
    });
    expect(await ledger.finalize(11n)).toEqual([]);
    expect(await ledger.finalize(12n)).toEqual([id]);
    expect(await batch(id)).toMatchObject({ status: 'final', revision: 2 });
    expect(await notices()).toEqual([
      { batch_id: id, revision: 1, status: 'included', block_hash: hex(0xa0), confirmations: 1 },
      { batch_id: id, revision: 2, status: 'final', block_hash: hex(0xa0), confirmations: 3 },
    ]);

    const [included, final] = await ledger.unsentNotices(10);
    const { anchor, records } = await ledger.noticeOf(final!);
    expect(anchor).toMatchObject({
      status: 'final',
      revision: 2,
      confirmations: 3,
      merkleRoot: trees.get(final!.batch_id)!.root,
      blockNumber: 10,
    });
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({
      relayId: 'relay-1',
      sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
      record: { leafIndex: 0, proof: proofOf(final!.batch_id, 0) },
    });
    await ledger.markNoticeSent(included!.id);
    expect((await ledger.unsentNotices(10)).map((n) => n.revision)).toEqual([2]);
  });

  test('behavior: with contentCacheRecords, a batch read once is not read again, and the cache is bounded', async () => {
    const cached = createBatchLedger(handle.db, { ...scope, contentCacheRecords: 3 });
    const uncached = ledger;
    const first = await builtBatch(1);
    const second = await builtBatch(2);
    for (const id of [first, second]) await ledger.recordSigned(id, signed);
    await ledger.markIncluded([anchoring(first, 10, 0xa0), anchoring(second, 10, 0xa0)], 10n);
    await ledger.finalize(12n);
    const all = await ledger.unsentNotices(10);
    const of = (id: string, status: string) =>
      all.find((n) => n.batch_id === id && n.status === status)!;

    const included = await cached.noticeOf(of(first, 'included'));
    // The rows are gone from the table; only a ledger that kept them can still answer.
    await handle.db
      .deleteFrom('records')
      .where(
        'record_id',
        'in',
        handle.db.selectFrom('record_leaves').select('record_id').where('batch_id', '=', first),
      )
      .execute();
    const final = await cached.noticeOf(of(first, 'final'));
    expect([final.anchor.status, final.anchor.revision]).toEqual(['final', 2]);
    expect(final.records.map((r) => r.record.proof)).toEqual([
      proofOf(first, 0),
      proofOf(first, 1),
    ]);
    // The same frozen records and proof arrays: what the outbox's verified-proof memo relies on.
    expect(final.records[0]!.record).toBe(included.records[0]!.record);
    expect(final.records[0]!.record.proof).toBe(included.records[0]!.record.proof);
    expect(Object.isFrozen(final.records[0]!.record.proof)).toBe(true);
    expect((await uncached.noticeOf(of(first, 'final'))).records).toEqual([]);

    // A second batch of two records passes the limit of three: the first is dropped.
    await cached.noticeOf(of(second, 'included'));
    expect((await cached.noticeOf(of(first, 'final'))).records).toEqual([]);
  });

  test('behavior: a reorg puts included batches back to sent with a reorged notice naming the old block', async () => {
    const low = await builtBatch(1);
    const high = await builtBatch(2);
    await ledger.recordSigned(low, signed);
    await ledger.recordSigned(high, { ...signed, nonce: 1, rawTx: '0x02' });
    await ledger.markIncluded([anchoring(low, 10, 0xa0), anchoring(high, 11, 0xa1)], 11n);

    expect(await ledger.revertAbove(10n)).toEqual({ batchIds: [high], deep: [] });
    expect(await batch(high)).toMatchObject({ status: 'sent', block_hash: null, revision: 2 });
    expect((await batch(low)).status).toBe('included');
    const reorged = (await notices()).filter((n) => n.status === 'reorged');
    expect(reorged).toEqual([
      { batch_id: high, revision: 2, status: 'reorged', block_hash: hex(0xa1), confirmations: 0 },
    ]);
    // Included again elsewhere: a third revision.
    expect(await ledger.markIncluded([anchoring(high, 12, 0xb2)], 12n)).toEqual([high]);
    expect(await batch(high)).toMatchObject({
      status: 'included',
      revision: 3,
      block_hash: hex(0xb2),
    });
  });

  test('behavior: seeing the same anchoring twice changes nothing; a deep one goes straight to final', async () => {
    const id = await builtBatch(1);
    await ledger.recordSigned(id, signed);
    expect(await ledger.markIncluded([anchoring(id, 10, 0xa0)], 20n)).toEqual([id]);
    expect(await batch(id)).toMatchObject({ status: 'final', revision: 1 });
    expect(await ledger.markIncluded([anchoring(id, 10, 0xa0)], 20n)).toEqual([]);
    expect(await notices()).toHaveLength(1);
  });

  test('behavior: a reorg deeper than the finality depth is reported as deep', async () => {
    const id = await builtBatch(1);
    await ledger.markIncluded([anchoring(id, 10, 0xa0)], 20n);
    expect(await ledger.revertAbove(5n)).toEqual({ batchIds: [id], deep: [id] });
  });

  test('behavior: transitions are guarded; a stale caller changes nothing', async () => {
    const id = await builtBatch(1);
    expect(await ledger.returnToBuilt(id)).toBe(false); // not sent
    expect(await ledger.recordAnchoredElsewhere(id)).toBe(true);
    expect(await ledger.recordAnchoredElsewhere(id)).toBe(false); // already sent
    expect(await ledger.recordSigned(id, signed)).toBe(false); // only from built
    expect(await ledger.returnToBuilt(id)).toBe(true); // sent without a tx of ours
    expect(await ledger.recordSigned(id, signed)).toBe(true);
    // A replacement must name the tx it replaces.
    expect(await ledger.recordSigned(id, { ...signed, rawTx: '0x03' }, '0xff')).toBe(false);
    expect(await ledger.recordSigned(id, { ...signed, rawTx: '0x03' }, '0x01')).toBe(true);
    expect((await batch(id)).raw_tx).toBe('0x03');
  });

  test('behavior: lookupRecord says unknown, pending, then anchored with confirmations', async () => {
    expect(await ledger.lookupRecord(hex(1))).toEqual({ state: 'unknown' });
    const id = await builtBatch(1);
    const recordId = hex(102);
    expect(await ledger.lookupRecord(recordId)).toEqual({ state: 'pending', subject: 'alice' });
    await ledger.markIncluded([anchoring(id, 10, 0xa0)], 10n);
    await handle.db
      .insertInto('indexer_cursors')
      .values({
        chain_id: scope.chainId,
        contract: scope.contract,
        block_number: 11,
        block_hash: hex(0xa1),
      })
      .execute();
    const found = await ledger.lookupRecord(recordId);
    expect(found).toMatchObject({
      state: 'anchored',
      subject: 'alice',
      receipt: {
        recordId,
        status: 'included',
        confirmations: 2,
        revision: 1,
        leafIndex: 0,
        proof: proofOf(id, 0),
      },
    });
  });

  test('behavior: sessionRecordsOf gives one session its records of a batch with their proofs', async () => {
    const id = await builtBatch(1, [SESSION_B, SESSION_A]);
    expect(await ledger.sessionRecordsOf(id, SESSION_A)).toEqual([
      {
        recordId: hex(103),
        topic: 'demo',
        subject: 'alice',
        contentHash: hex(7),
        acceptedAt: 1_700_000_000_001,
        leafHash: trees.get(id)!.leafHashes[1],
        leafIndex: 1,
        proof: proofOf(id, 1),
      },
    ]);
    expect((await ledger.sessionRecordsOf(id, SESSION_B)).map((r) => r.leafIndex)).toEqual([0]);
    expect(await ledger.sessionRecordsOf(id, 'CCCCCCCCCCCCCCCCCCCCCC')).toEqual([]);
    expect(await ledger.sessionRecordsOf(hex(9), SESSION_A)).toEqual([]);
  });

  test('behavior: lookupBatch says unknown, pending (built, sent, reorged), then anchored with a page of leaves and proofs', async () => {
    const page = { from: 0, limit: 10 };
    expect(await ledger.lookupBatch(hex(9), page)).toEqual({ state: 'unknown' });
    const id = await builtBatch(1, [SESSION_B, SESSION_A]);
    expect(await ledger.lookupBatch(id, page)).toEqual({ state: 'pending', status: 'built' });
    await ledger.recordSigned(id, signed);
    expect(await ledger.lookupBatch(id, page)).toEqual({ state: 'pending', status: 'sent' });
    await ledger.markIncluded([anchoring(id, 10, 0xa0)], 11n);
    const tree = trees.get(id)!;
    const anchor = {
      status: 'included',
      confirmations: 2,
      revision: 1,
      batchId: id,
      merkleRoot: tree.root,
      recordCount: 2,
      chainId: scope.chainId,
      contract: scope.contract,
      txHash: hex(60),
      blockNumber: 10,
      blockHash: hex(0xa0),
      logIndex: 0,
    };
    await handle.db
      .insertInto('indexer_cursors')
      .values({ chain_id: scope.chainId, contract: scope.contract, block_number: 11 })
      .execute();
    expect(await ledger.lookupBatch(id, page)).toEqual({
      state: 'anchored',
      anchor,
      records: [0, 1].map((i) => ({
        recordId: hex(102 + i),
        topic: 'demo',
        subject: 'alice',
        contentHash: hex(7),
        acceptedAt: 1_700_000_000_000 + i,
        leafHash: tree.leafHashes[i],
        leafIndex: i,
        proof: proofOf(id, i),
      })),
      leafCount: 2,
    });
    const second = await ledger.lookupBatch(id, { from: 1, limit: 1 });
    expect(second).toMatchObject({ leafCount: 2 });
    expect(
      (second as { records: { leafIndex: number }[] }).records.map((r) => r.leafIndex),
    ).toEqual([1]);
    expect(await ledger.lookupBatch(id, { from: 2, limit: 1 })).toMatchObject({ records: [] });

    // A reorg puts it back to sent: pending again.
    await ledger.revertAbove(9n);
    expect(await ledger.lookupBatch(id, page)).toEqual({ state: 'pending', status: 'sent' });
  });

  test('error: a batch whose stored records do not rebuild its root gives no receipts', async () => {
    const id = await builtBatch(1);
    await ledger.markIncluded([anchoring(id, 10, 0xa0)], 10n);
    const [notice] = await ledger.unsentNotices(10);
    // A stored leaf field changed after the batch was built (corruption, a bad migration).
    await handle.db
      .updateTable('records')
      .set({ subject: 'mallory' })
      .where('record_id', '=', hex(102))
      .execute();
    await expect(ledger.noticeOf(notice!)).rejects.toMatchObject({
      name: 'BatchRootMismatchError',
      shortMessage: 'stored records do not rebuild the batch root',
    });
    await expect(ledger.lookupRecord(hex(103))).rejects.toMatchObject({
      name: 'BatchRootMismatchError',
      shortMessage: 'stored records do not rebuild the batch root',
    });
    await expect(ledger.lookupBatch(id, { from: 0, limit: 10 })).rejects.toMatchObject({
      name: 'BatchRootMismatchError',
    });
  });

  test('error: createBatch refuses records that are already batched', async () => {
    await builtBatch(1);
    await expect(
      createBatchLedger(handle.db, scope).createBatch(
        { batchId: hex(2), merkleRoot: hex(9), recordCount: 1 },
        [{ recordId: hex(102), leafIndex: 0, leafHash: hex(20) }],
      ),
    ).rejects.toMatchObject({
      name: 'LedgerError',
      shortMessage: 'batch update touched an unexpected number of records',
    });
  });
});

test('default: confirmationsAt counts the anchoring block', () => {
  expect(confirmationsAt(10n, 10n)).toBe(1);
  expect(confirmationsAt(12n, 10n)).toBe(3);
  expect(confirmationsAt(9n, 10n)).toBe(0);
});
