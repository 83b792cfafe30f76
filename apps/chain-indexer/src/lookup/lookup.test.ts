import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  type BusDeps,
  createIndexerClient,
  createKeys,
  createQueue,
  createQueueEvents,
  createRedisConnection,
  jobIds,
  RemoteError,
  requestReply,
  type TypedQueue,
} from '@streamanchor/bus';
import { type BatchLedger, createBatchLedger, type DatabaseHandle } from '@streamanchor/db';
import {
  contentHashOf,
  LEAF_ENCODING,
  type LookupReceiptResult,
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
    logger: createLogger({ service: 'lookup-test', level: 'silent' }),
  });
  await worker.waitUntilReady();
});

afterEach(async () => {
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
