import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  type BusDeps,
  createIndexerClient,
  createKeys,
  createQueue,
  createQueueEvents,
  createRedisConnection,
  type IndexerClient,
  jobIds,
  RemoteError,
  requestReply,
  type TypedQueue,
} from '@streamanchor/bus';
import {
  type BatchLedger,
  createBatchLedger,
  type DatabaseHandle,
  pruneRecordPayloads,
} from '@streamanchor/db';
import {
  AUDIT_TOPIC,
  type BatchByIdResult,
  buildMerkleTree,
  contentHashOf,
  type Hex,
  HISTORY_LIMITS,
  LEAF_ENCODING,
  type LookupReceiptResult,
  leafHash,
  leafValue,
  type ReceiptAnchor,
  receiptOf,
  verifyReceiptProof,
} from '@streamanchor/protocol';
import { createLogger } from '@streamanchor/service-kit';
import {
  ANVIL_CHAIN_ID,
  createTestDatabase,
  deleteRedisPrefix,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import type { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { concat, keccak256 } from 'viem';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { randomHex32, randomSessionId } from '../test-fixtures';
import { createLookupWorker, type LookupWorker } from './index';

// Real Redis and a real (PGlite) database; the gateway's side of the request/reply is
// played by requestReply itself, exactly as the gateway calls it.
const CONTRACT = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
const FINALITY_DEPTH = 3;

let database: DatabaseHandle;
let ledger: BatchLedger;
let connection: Redis;
let bus: BusDeps;
let queue: TypedQueue<'indexerLookup'>;
let events: QueueEvents;
let worker: LookupWorker;
/** The gateway's and the relays' side: createIndexerClient, as they call it. */
let client: IndexerClient;

beforeEach(async () => {
  database = await createTestDatabase('pglite');
  ledger = createBatchLedger(database.db, {
    chainId: ANVIL_CHAIN_ID,
    contract: CONTRACT,
    finalityDepth: FINALITY_DEPTH,
  });
  connection = createRedisConnection(TEST_REDIS_URL, 'lookup-test');
  bus = { connection, keys: createKeys(testRedisPrefix('lookup')) };
  queue = createQueue(bus, 'indexerLookup');
  events = createQueueEvents(bus, 'indexerLookup');
  await events.waitUntilReady();
  worker = createLookupWorker({
    bus,
    ledger,
    db: database.db,
    logger: createLogger({ service: 'lookup-test', level: 'silent' }),
  });
  await worker.waitUntilReady();
  client = createIndexerClient({
    bus,
    timeoutMs: 5_000,
    logger: createLogger({ service: 'lookup-test', level: 'silent' }),
  });
});

afterEach(async () => {
  await client.close();
  await worker.close();
  await events.close();
  await queue.close();
  await deleteRedisPrefix(bus.keys.prefix);
  connection.disconnect();
  await database.close();
});

const lookup = (recordId: string) =>
  requestReply(
    queue,
    events,
    'lookupReceipt',
    { recordId: recordId as `0x${string}` },
    { jobId: jobIds.lookupReceipt(recordId, randomHex32().slice(2, 10)), timeoutMs: 5_000 },
  );

/** What the chain-writer stores and batches: two records of alice in one built batch. */
async function seedBuiltBatch() {
  const sessionId = randomSessionId();
  const records = [0, 1].map((n) => {
    const payload = JSON.stringify({ n });
    return {
      recordId: randomHex32(),
      topic: 'demo',
      subject: 'alice',
      contentHash: contentHashOf(payload),
      acceptedAt: 1_700_000_000_000 + n,
      payload,
    };
  });
  await database.db
    .insertInto('records')
    .values(
      records.map((r) => ({
        record_id: r.recordId,
        topic: r.topic,
        subject: r.subject,
        content_hash: r.contentHash,
        accepted_at: r.acceptedAt,
        payload: r.payload,
        relay_id: 'relay-1',
        session_id: sessionId,
      })),
    )
    .execute();
  const tree = StandardMerkleTree.of(records.map(leafValue), [...LEAF_ENCODING]);
  const batchId = randomHex32();
  await ledger.createBatch(
    { batchId, merkleRoot: tree.root, recordCount: records.length },
    records.map((r, i) => ({
      recordId: r.recordId,
      leafIndex: i,
      leafHash: tree.leafHash(leafValue(r)),
    })),
  );
  return { batchId, records, merkleRoot: tree.root, sessionId };
}

/** The anchor fields a proof check does not read (verifyReceiptProof reads the root). */
const anchorStub: ReceiptAnchor = {
  status: 'included',
  confirmations: 1,
  revision: 1,
  batchId: `0x${'00'.repeat(32)}`,
  merkleRoot: `0x${'00'.repeat(32)}`,
  recordCount: 2,
  chainId: ANVIL_CHAIN_ID,
  contract: CONTRACT,
  txHash: `0x${'00'.repeat(32)}`,
  blockNumber: 10,
  blockHash: `0x${'00'.repeat(32)}`,
  logIndex: 0,
};

describe('createLookupWorker', () => {
  test('default: an anchored record comes back with its current receipt', async () => {
    const { batchId, records, merkleRoot } = await seedBuiltBatch();
    const txHash = randomHex32();
    expect(
      await ledger.recordSigned(batchId, { signer: '0xsigner', nonce: 0, rawTx: '0x01', txHash }),
    ).toBe(true);
    const blockHash = randomHex32();
    await ledger.markIncluded([{ batchId, txHash, blockNumber: 10n, blockHash, logIndex: 0 }], 10n);

    const result = await lookup(records[1]!.recordId);
    expect(result).toMatchObject({
      state: 'anchored',
      subject: 'alice',
      receipt: {
        status: 'included',
        confirmations: 1,
        recordId: records[1]!.recordId,
        leafIndex: 1,
        batchId,
        merkleRoot,
        recordCount: 2,
        chainId: ANVIL_CHAIN_ID,
        contract: CONTRACT,
        txHash,
        blockNumber: 10,
        blockHash,
        logIndex: 0,
      },
    });
    const anchored = result as Extract<LookupReceiptResult, { state: 'anchored' }>;
    expect(verifyReceiptProof(anchored.receipt)).toBe(true);
  });

  test('behavior: final once deep enough; pending before inclusion; unknown when never stored', async () => {
    const { batchId, records } = await seedBuiltBatch();
    expect(await lookup(records[0]!.recordId)).toEqual({ state: 'pending', subject: 'alice' });

    const txHash = randomHex32();
    await ledger.recordSigned(batchId, { signer: '0xsigner', nonce: 0, rawTx: '0x01', txHash });
    expect(await lookup(records[0]!.recordId)).toEqual({ state: 'pending', subject: 'alice' });

    await ledger.markIncluded(
      [{ batchId, txHash, blockNumber: 10n, blockHash: randomHex32(), logIndex: 0 }],
      10n + BigInt(FINALITY_DEPTH),
    );
    const final = await lookup(records[0]!.recordId);
    expect(final).toMatchObject({ state: 'anchored', receipt: { status: 'final' } });

    expect(await lookup(randomHex32())).toEqual({ state: 'unknown' });
  });

  test('behavior: sessionRecords (a relay, through createIndexerClient) gives a session its records of a batch with proofs', async () => {
    const { batchId, records, merkleRoot, sessionId } = await seedBuiltBatch();
    const client = createIndexerClient({
      bus,
      timeoutMs: 5_000,
      logger: createLogger({ service: 'lookup-test', level: 'silent' }),
    });
    try {
      const { records: got } = await client.sessionRecords(batchId as `0x${string}`, sessionId);
      expect(got.map((r) => [r.recordId, r.leafIndex])).toEqual([
        [records[0]!.recordId, 0],
        [records[1]!.recordId, 1],
      ]);
      for (const record of got) {
        const receipt = receiptOf(
          {
            ...anchorStub,
            batchId: batchId as `0x${string}`,
            merkleRoot: merkleRoot as `0x${string}`,
          },
          record,
        );
        expect(verifyReceiptProof(receipt)).toBe(true);
      }
      expect(await client.sessionRecords(batchId as `0x${string}`, randomSessionId())).toEqual({
        records: [],
      });
      const refused = await client
        .sessionRecords(batchId as `0x${string}`, 'not a session id')
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RemoteError);
      expect(refused).toMatchObject({ code: 'bad_request' });
    } finally {
      await client.close();
    }
  });

  test('error: a malformed request fails with RemoteError bad_request', async () => {
    const error = await lookup('not-a-record-id').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: 'bad_request' });
  });
});

/** A stored record of the history tests (the writer's row), with its leaf fields. */
interface SeedRecord {
  recordId: Hex;
  topic: string;
  subject: string;
  contentHash: Hex;
  acceptedAt: number;
  payload: string;
  position: number | null;
}

let nextRecord = 0;
/** Stores records of `topic` at `positions` (null: none), as the writer does. */
async function storeRecords(
  topic: string,
  positions: (number | null)[],
  payloadOf: (n: number) => string = (n) => JSON.stringify({ n }),
): Promise<SeedRecord[]> {
  const records = positions.map((position) => {
    const n = nextRecord++;
    const payload = payloadOf(n);
    return {
      recordId: randomHex32(),
      topic,
      subject: topic === AUDIT_TOPIC ? 'streamanchor-audit' : 'alice',
      contentHash: contentHashOf(payload),
      acceptedAt: 1_700_000_000_000 + n,
      payload,
      position,
    };
  });
  await database.db
    .insertInto('records')
    .values(
      records.map((r) => ({
        record_id: r.recordId,
        topic: r.topic,
        subject: r.subject,
        content_hash: r.contentHash,
        accepted_at: r.acceptedAt,
        payload: r.payload,
        relay_id: 'relay-1',
        session_id: randomSessionId(),
        position: r.position,
      })),
    )
    .execute();
  return records;
}

/** Batches `records` (in this leaf order) and, unless `status` says otherwise, anchors it at block 10. */
async function batchOf(
  records: SeedRecord[],
  status: 'built' | 'sent' | 'included' | 'final' = 'included',
) {
  const tree = await buildMerkleTree(records);
  const batchId = randomHex32();
  await ledger.createBatch(
    { batchId, merkleRoot: tree.root, recordCount: records.length },
    records.map((r, i) => ({ recordId: r.recordId, leafIndex: i, leafHash: tree.leafHashes[i]! })),
  );
  const txHash = randomHex32();
  const blockHash = randomHex32();
  if (status !== 'built') {
    await ledger.recordSigned(batchId, { signer: '0xsigner', nonce: 0, rawTx: '0x01', txHash });
  }
  if (status === 'included' || status === 'final') {
    await ledger.markIncluded(
      [{ batchId, txHash, blockNumber: 10n, blockHash, logIndex: 3 }],
      status === 'final' ? 10n + BigInt(FINALITY_DEPTH) : 10n,
    );
  }
  return { batchId, merkleRoot: tree.root, txHash, blockHash };
}

/** Folds a proof from a leaf (docs/protocol.md §7). */
function foldProof(leaf: Hex, proof: readonly Hex[]): Hex {
  return proof.reduce((node, sibling) => {
    const [a, b] = [node, sibling].sort();
    return keccakPair(a!, b!);
  }, leaf);
}
const keccakPair = (a: Hex, b: Hex): Hex => keccak256(concat([a, b]));

/** Every leaf of a batch, page after page (as a chain-first follower reads them). */
async function allLeaves(batchId: Hex, limit: number, payloadTopics?: string[]) {
  const pages: Extract<BatchByIdResult, { state: 'anchored' }>[] = [];
  let from: number | null = 0;
  while (from !== null) {
    const page = await client.batchById(batchId, {
      from,
      limit,
      ...(payloadTopics ? { payloadTopics } : {}),
    });
    if (page.state !== 'anchored') throw new Error(`batch is ${page.state}`);
    pages.push(page);
    from = page.next;
  }
  return pages;
}

describe('history lookups', () => {
  test('default: topicRecords gives a topic’s records after a position, in order, with payload text, batch and head', async () => {
    const demo = await storeRecords('demo', [1, 2, 3, 4]);
    await storeRecords('other', [1, 2]);
    const { batchId } = await batchOf(demo.slice(0, 2));

    const first = await client.topicRecords('demo', 0, 3);
    expect(first).toEqual({
      records: demo.slice(0, 3).map((r, i) => ({
        position: i + 1,
        recordId: r.recordId,
        subject: 'alice',
        contentHash: r.contentHash,
        acceptedAt: r.acceptedAt,
        payload: r.payload,
        batchId: i < 2 ? batchId : null,
      })),
      head: 4,
    });
    for (const record of first.records) {
      expect(contentHashOf(record.payload!)).toBe(record.contentHash);
    }
    expect((await client.topicRecords('demo', 3, 3)).records.map((r) => r.position)).toEqual([4]);
    expect(await client.topicRecords('demo', 4, 3)).toEqual({ records: [], head: 4 });
    expect(await client.topicRecords('nothing-here', 0, 10)).toEqual({ records: [], head: 0 });
  });

  test('behavior: pruned payloads come back as null; leaves, proofs and roots are unchanged', async () => {
    const demo = await storeRecords('demo', [1, 2]);
    const { batchId, merkleRoot } = await batchOf(demo, 'final');
    const before = await client.batchById(batchId);
    await database.db
      .updateTable('batches')
      .set({ created_at: new Date('2020-01-01T00:00:00Z') as never })
      .where('batch_id', '=', batchId)
      .execute();
    expect(
      await pruneRecordPayloads(database.db, {
        chainId: ANVIL_CHAIN_ID,
        contract: CONTRACT,
        before: new Date('2021-01-01T00:00:00Z'),
      }),
    ).toMatchObject({ batches: 1, records: 2 });

    expect((await client.topicRecords('demo', 0, 10)).records.map((r) => r.payload)).toEqual([
      null,
      null,
    ]);
    expect((await client.recordById(demo[0]!.recordId)).record?.payload).toBeNull();
    const after = await client.batchById(batchId);
    expect(after).toEqual({
      ...before,
      leaves: (before as Extract<BatchByIdResult, { state: 'anchored' }>).leaves.map((leaf) => ({
        ...leaf,
        payload: null,
      })),
    });
    expect((after as Extract<BatchByIdResult, { state: 'anchored' }>).anchor.merkleRoot).toBe(
      merkleRoot,
    );
  });

  test('behavior: recordById gives one record with topic, position and batch, or null', async () => {
    const [record] = await storeRecords('demo', [7]);
    const { batchId } = await batchOf([record!], 'built');
    const [audit] = await storeRecords(AUDIT_TOPIC, [null]);
    expect(await client.recordById(record!.recordId)).toEqual({
      record: {
        recordId: record!.recordId,
        topic: 'demo',
        position: 7,
        subject: 'alice',
        contentHash: record!.contentHash,
        acceptedAt: record!.acceptedAt,
        payload: record!.payload,
        batchId,
      },
    });
    // The audit log's records (reserved topic, no position) are stored records too.
    expect(await client.recordById(audit!.recordId)).toMatchObject({
      record: { topic: AUDIT_TOPIC, position: null, batchId: null },
    });
    expect(await client.recordById(randomHex32())).toEqual({ record: null });
  });

  test('behavior: batchById gives the anchoring and every leaf, page by page; all pages rebuild the anchored root', async () => {
    const records = [
      ...(await storeRecords('demo', [1, 2, 3])),
      ...(await storeRecords('chat', [1, 2])),
      ...(await storeRecords(AUDIT_TOPIC, [null])),
      ...(await storeRecords('demo', [4])),
    ];
    const { batchId, merkleRoot, txHash, blockHash } = await batchOf(records, 'included');
    await database.db
      .insertInto('indexer_cursors')
      .values({ chain_id: ANVIL_CHAIN_ID, contract: CONTRACT, block_number: 12 })
      .execute();

    const pages = await allLeaves(batchId, 3);
    expect(pages.map((page) => [page.leaves.map((l) => l.leafIndex), page.next])).toEqual([
      [[0, 1, 2], 3],
      [[3, 4, 5], 6],
      [[6], null],
    ]);
    for (const page of pages) {
      expect(page.anchor).toEqual({
        status: 'included',
        confirmations: 3,
        revision: 1,
        batchId,
        merkleRoot,
        recordCount: 7,
        chainId: ANVIL_CHAIN_ID,
        contract: CONTRACT,
        txHash,
        blockNumber: 10,
        blockHash,
        logIndex: 3,
      });
    }
    const leaves = pages.flatMap((page) => page.leaves);
    expect(leaves.map((l) => [l.recordId, l.topic, l.position, l.payload])).toEqual(
      records.map((r) => [r.recordId, r.topic, r.position, r.payload]),
    );
    // Every leaf's hash is its fields', its proof folds to the root, and all the leaves
    // together rebuild the root: the pages are the whole batch.
    for (const leaf of leaves) {
      expect(leafHash(leaf)).toBe(leaf.leafHash);
      expect(foldProof(leaf.leafHash, leaf.proof)).toBe(merkleRoot);
      expect(contentHashOf(leaf.payload!)).toBe(leaf.contentHash);
    }
    expect(StandardMerkleTree.of(leaves.map(leafValue), [...LEAF_ENCODING]).root).toBe(merkleRoot);

    // Without `from` and `limit`: the first HISTORY_LIMITS.defaultPageRecords leaves.
    expect(await client.batchById(batchId)).toEqual({ ...pages[0], leaves, next: null });
  });

  test('behavior: batchById carries only the payloads of payloadTopics', async () => {
    const records = [
      ...(await storeRecords('demo', [1])),
      ...(await storeRecords('chat', [1])),
      ...(await storeRecords(AUDIT_TOPIC, [null])),
    ];
    const { batchId } = await batchOf(records, 'final');
    const payloads = async (payloadTopics?: string[]) =>
      (await allLeaves(batchId, 10, payloadTopics)).flatMap((page) =>
        page.leaves.map((l) => l.payload),
      );
    expect(await payloads(['chat'])).toEqual([null, records[1]!.payload, null]);
    expect(await payloads([])).toEqual([null, null, null]);
    expect(await payloads(['*'])).toEqual(records.map((r) => r.payload));
    expect(await payloads()).toEqual(records.map((r) => r.payload));
    expect((await client.batchById(batchId)).state).toBe('anchored');
  });

  test('behavior: batchById says unknown for no batch, pending while built or sent', async () => {
    expect(await client.batchById(randomHex32())).toEqual({ state: 'unknown' });
    const built = await batchOf(await storeRecords('demo', [1]), 'built');
    expect(await client.batchById(built.batchId)).toEqual({ state: 'pending', status: 'built' });
    const sent = await batchOf(await storeRecords('demo', [2]), 'sent');
    expect(await client.batchById(sent.batchId)).toEqual({ state: 'pending', status: 'sent' });
    const final = await batchOf(await storeRecords('demo', [3]), 'final');
    expect(await client.batchById(final.batchId)).toMatchObject({
      state: 'anchored',
      anchor: { status: 'final', revision: 1 },
      next: null,
    });
  });

  test('behavior: a page stops early once its payloads reach 1 MiB (at least one record), and next says where to go on', async () => {
    const big = (n: number) => JSON.stringify({ n, pad: 'x'.repeat(400 * 1024) });
    const records = await storeRecords('demo', [1, 2, 3, 4, 5], big);
    const { batchId } = await batchOf(records);
    const page = await client.topicRecords('demo', 0, 5);
    expect(page.records.map((r) => r.position)).toEqual([1, 2]);
    expect(page.head).toBe(5);
    const pages = await allLeaves(batchId, 5);
    expect(pages.map((p) => [p.leaves.length, p.next])).toEqual([
      [2, 2],
      [2, 4],
      [1, null],
    ]);
    // Without payloads, the page is not cut.
    expect((await allLeaves(batchId, 5, [])).map((p) => p.leaves.length)).toEqual([5]);
    // One payload above the budget still comes, alone.
    await storeRecords('huge', [1, 2], (n) =>
      JSON.stringify({ n, pad: 'y'.repeat(HISTORY_LIMITS.maxPagePayloadBytes) }),
    );
    expect((await client.topicRecords('huge', 0, 2)).records.map((r) => r.position)).toEqual([1]);
  });

  test('error: malformed history requests fail with RemoteError bad_request', async () => {
    const refused = async (request: Promise<unknown>) => {
      const error = await request.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      return (error as RemoteError).details;
    };
    expect(await refused(client.topicRecords('demo', 0, 0))).toEqual({
      code: 'bad_request',
      detail: 'not a topicRecords request',
    });
    expect(
      await refused(client.topicRecords('demo', 0, HISTORY_LIMITS.maxPageRecords + 1)),
    ).toMatchObject({
      code: 'bad_request',
    });
    expect(await refused(client.topicRecords('Not A Topic', 0, 10))).toMatchObject({
      code: 'bad_request',
    });
    expect(await refused(client.topicRecords('demo', -1, 10))).toMatchObject({
      code: 'bad_request',
    });
    expect(await refused(client.recordById('0x1234' as Hex))).toEqual({
      code: 'bad_request',
      detail: 'not a recordById request',
    });
    expect(await refused(client.batchById(randomHex32(), { from: -1 }))).toEqual({
      code: 'bad_request',
      detail: 'not a batchById request',
    });
    expect(await refused(client.batchById(randomHex32(), { limit: 0 }))).toMatchObject({
      code: 'bad_request',
    });
  });
});
