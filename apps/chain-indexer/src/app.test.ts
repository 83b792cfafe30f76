import { Value } from '@sinclair/typebox/value';
import {
  createKeys,
  createQueue,
  createRedisConnection,
  createWorker,
  type Keys,
  watchTopics,
} from '@streamanchor/bus';
import { deployStreamAnchor, streamAnchorAbi } from '@streamanchor/contracts';
import { createBatchLedger, type DatabaseHandle } from '@streamanchor/db';
import { ReceiptNoticeJob, receiptOf, verifyReceiptProof } from '@streamanchor/protocol';
import { createLogger, registry } from '@streamanchor/service-kit';
import {
  type Anvil,
  createTestDatabase,
  deleteRedisPrefix,
  startAnvil,
  TEST_DATABASE_KINDS,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import type { Redis } from 'ioredis';
import { createPublicClient, http, type PublicClient } from 'viem';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type App, createApp, type SyncOnceResult } from './app';
import type { Config } from './config';
import { ChainIdMismatchError } from './errors';
import { receiptJobId } from './receipts';
import {
  anchorOnChain,
  anvilChain,
  type ChainClients,
  chainClients,
  mine,
  randomHex32,
  randomSessionId,
  seedBatch,
  testConfig,
} from './test-fixtures';

describe.each(TEST_DATABASE_KINDS)('chain-indexer on %s', (kind) => {
  let anvil: Anvil;
  let database: DatabaseHandle;
  let redis: Redis;
  let prefix: string;
  let keys: Keys;
  let chain: ChainClients;
  let contract: `0x${string}`;
  let deploymentBlock: number;
  let cleanups: (() => Promise<unknown>)[];

  beforeEach(async () => {
    cleanups = [];
    [anvil, database] = await Promise.all([startAnvil(), createTestDatabase(kind)]);
    prefix = testRedisPrefix('indexer');
    keys = createKeys(prefix);
    redis = createRedisConnection(TEST_REDIS_URL, 'chain-indexer-test');
    chain = chainClients(anvil.rpcUrl);
    const deployed = await deployStreamAnchor({
      walletClient: chain.walletClient,
      publicClient: chain.publicClient,
    });
    contract = deployed.address.toLowerCase() as `0x${string}`;
    deploymentBlock = Number(deployed.blockNumber);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    redis.disconnect();
    await deleteRedisPrefix(prefix);
    await database.close();
    await anvil.stop();
  });

  const logger = createLogger({ service: 'chain-indexer-test', level: 'silent' });

  function makeApp(
    overrides: Partial<Config> = {},
    publicClient: PublicClient = chain.publicClient,
  ): App {
    const config = testConfig({
      rpcUrl: anvil.rpcUrl,
      contract,
      deploymentBlock,
      redisPrefix: prefix,
      ...overrides,
    });
    const app = createApp({ config, logger, redis, keys, db: database.db, publicClient });
    cleanups.push(() => app.stop());
    return app;
  }

  /**
   * A receiptNotice job's receipts, one per record, as a relay turns them into messages. A
   * later notice carries each session's number of records only: they are read as a relay
   * would get them (SessionRecordsRequest), here from the ledger the lookup worker answers
   * from (lookup.test.ts covers the request over the queue).
   */
  async function receiptsIn(data: unknown) {
    const { anchor, sessions } = data as ReceiptNoticeJob;
    const ledger = createBatchLedger(database.db, {
      chainId: 31337,
      contract,
      finalityDepth: 3,
    });
    const receipts = [];
    for (const session of sessions) {
      let records = 'records' in session ? session.records : undefined;
      if (!('records' in session)) {
        records = await ledger.sessionRecordsOf(anchor.batchId, session.sessionId);
        expect(records).toHaveLength(session.recordCount);
      }
      for (const record of records!)
        receipts.push({ sessionId: session.sessionId, receipt: receiptOf(anchor, record) });
    }
    return receipts;
  }
  const receiptsOfJobs = async (jobs: readonly { data: unknown }[]) =>
    (await Promise.all(jobs.map((job) => receiptsIn(job.data)))).flat();

  /** A worker standing in for rtc-relay on one relay's receipts queue. */
  function relayWorker(relayId: string) {
    const jobs: { id: string | undefined; name: string; data: ReceiptNoticeJob }[] = [];
    const worker = createWorker({ connection: redis, keys }, 'receipts', relayId, async (job) => {
      const data = job.data as ReceiptNoticeJob;
      jobs.push({ id: job.id, name: job.name, data });
      return { delivered: (await receiptsIn(data)).length };
    });
    cleanups.push(() => worker.close());
    return jobs;
  }

  /** The jobs waiting on a relay's receipts queue (no worker running). */
  async function waitingJobs(relayId: string) {
    const queue = createQueue({ connection: redis, keys }, 'receipts', relayId);
    try {
      return await queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed']);
    } finally {
      await queue.close();
    }
  }

  const eventRows = () =>
    database.db.selectFrom('anchor_events').selectAll().orderBy('block_number').execute();
  const batchRow = (batchId: string) =>
    database.db
      .selectFrom('batches')
      .selectAll()
      .where('batch_id', '=', batchId)
      .executeTakeFirstOrThrow();
  const cursorRow = () => database.db.selectFrom('indexer_cursors').selectAll().executeTakeFirst();

  it('default', async () => {
    const [s1, s2, s3] = [randomSessionId(), randomSessionId(), randomSessionId()];
    const batch = await seedBatch(database.db, {
      contract,
      sessions: [
        { relayId: 'relay-a', sessionId: s1, records: 3 },
        { relayId: 'relay-a', sessionId: s2, records: 2 },
        { relayId: 'relay-b', sessionId: s3, records: 2 },
      ],
    });
    const jobsA = relayWorker('relay-a');
    const jobsB = relayWorker('relay-b');
    const app = makeApp();
    await app.start();

    const anchored = await anchorOnChain(chain, contract, batch);
    await vi.waitFor(
      () => {
        expect(jobsA).toHaveLength(1);
        expect(jobsB).toHaveLength(1);
      },
      { timeout: 30_000, interval: 50 },
    );

    const [onChain] = await chain.publicClient.getContractEvents({
      address: contract,
      abi: streamAnchorAbi,
      eventName: 'BatchAnchored',
      fromBlock: anchored.blockNumber,
      toBlock: anchored.blockNumber,
      strict: true,
    });
    expect(onChain?.args.batchId).toBe(batch.batchId);

    const events = await eventRows();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      chain_id: 31337,
      contract,
      batch_id: batch.batchId,
      merkle_root: batch.merkleRoot,
      record_count: 7,
      tx_hash: anchored.txHash,
      block_hash: anchored.blockHash,
      log_index: anchored.logIndex,
      writer: chain.walletClient.account.address.toLowerCase(),
    });
    expect(Number(events[0]?.block_number)).toBe(Number(anchored.blockNumber));

    const row = await batchRow(batch.batchId);
    expect(row).toMatchObject({
      status: 'included',
      revision: 1,
      tx_hash: anchored.txHash,
      block_hash: anchored.blockHash,
      log_index: anchored.logIndex,
    });
    expect(Number(row.block_number)).toBe(Number(anchored.blockNumber));
    expect(row.included_at).toBeInstanceOf(Date);
    expect(row.final_at).toBeNull();

    const cursor = await cursorRow();
    expect(Number(cursor?.block_number)).toBeGreaterThanOrEqual(Number(anchored.blockNumber));

    for (const [relayId, jobs, sessions] of [
      ['relay-a', jobsA, { [s1]: 3, [s2]: 2 }],
      ['relay-b', jobsB, { [s3]: 2 }],
    ] as const) {
      const job = jobs[0]!;
      expect(job.name).toBe('receiptNotice');
      expect(job.id).toBe(receiptJobId(batch.batchId, 1, relayId, 0, 1));
      expect(Value.Check(ReceiptNoticeJob, job.data)).toBe(true);
      const perSession: Record<string, number> = {};
      for (const { sessionId, receipt } of await receiptsIn(job.data)) {
        perSession[sessionId] = (perSession[sessionId] ?? 0) + 1;
        expect(verifyReceiptProof(receipt)).toBe(true);
        expect(receipt.merkleRoot).toBe(onChain?.args.merkleRoot.toLowerCase());
        expect(receipt).toMatchObject({
          status: 'included',
          revision: 1,
          batchId: batch.batchId,
          recordCount: 7,
          chainId: 31337,
          contract,
          txHash: anchored.txHash,
          blockNumber: Number(anchored.blockNumber),
          blockHash: anchored.blockHash,
          logIndex: anchored.logIndex,
        });
        const record = batch.records.find((r) => r.recordId === receipt.recordId);
        expect(record?.sessionId).toBe(sessionId);
        expect(receipt.acceptedAt).toBe(record?.acceptedAt);
      }
      expect(perSession).toEqual(sessions);
    }
    // The metrics: the 7 receipts notified, the lag, the lookup queue's depth.
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/^streamanchor_indexer_receipts_notified_total [1-9]\d*$/m);
    expect(metrics).toMatch(/^streamanchor_indexer_lag_blocks \d+$/m);
    expect(metrics).toMatch(/^streamanchor_indexer_indexed_block [1-9]\d*$/m);
    expect(metrics).toContain('streamanchor_queue_jobs{queue="indexerLookup",state="waiting"} 0');
  });

  it('behavior: backfills from the deployment block when the events predate the start', async () => {
    const batches = [];
    for (let i = 0; i < 3; i++) {
      const batch = await seedBatch(database.db, {
        contract,
        sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 2 + i }],
      });
      await anchorOnChain(chain, contract, batch);
      batches.push(batch);
    }
    await mine(chain.publicClient, 5);
    const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 });

    const result = await makeApp().syncToHead();
    expect(result.caughtUp).toBe(true);
    expect(result.cursor).toBe(head);
    const events = await eventRows();
    expect(events.map((e) => e.batch_id)).toEqual(batches.map((b) => b.batchId));
    // Five blocks on top of FINALITY_DEPTH 3: straight to final, one notice each.
    for (const batch of batches) expect((await batchRow(batch.batchId)).status).toBe('final');
    const cursor = await cursorRow();
    expect(Number(cursor?.block_number)).toBe(Number(head));
    expect(cursor?.block_hash).toBe(
      (await chain.publicClient.getBlock({ blockNumber: head })).hash,
    );

    const jobs = await waitingJobs('relay-a');
    expect(jobs.map((job) => job.id).sort()).toEqual(
      batches.map((b) => receiptJobId(b.batchId, 1, 'relay-a', 0, 1)).sort(),
    );
    for (const job of jobs)
      for (const { receipt } of await receiptsIn(job.data)) {
        expect(verifyReceiptProof(receipt)).toBe(true);
        expect(receipt.status).toBe('final');
      }
  });

  it('behavior: subscribers of a watched topic are told each anchoring change of its batches, with their positions', async () => {
    const watched = await seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 5 }],
    });
    // A relay with subscribers to the topic watches it (as the subscription hub does).
    await watchTopics(redis, keys, ['test.topic'], 60_000);
    await anchorOnChain(chain, contract, watched);
    const app = makeApp();
    expect((await app.syncToHead()).caughtUp).toBe(true);
    await mine(chain.publicClient, 5);
    await app.syncToHead();
    const entries = await redis.xrange(keys.topicAnchoring('test.topic'), '-', '+');
    const announced = entries.map(([, fields]) => JSON.parse(fields[1]!));
    expect(announced.map((a) => [a.anchor.batchId, a.anchor.status, a.anchor.revision])).toEqual([
      [watched.batchId, 'included', 1],
      [watched.batchId, 'final', 2],
    ]);
    expect(announced[1]).toEqual({
      anchor: expect.objectContaining({
        merkleRoot: watched.merkleRoot,
        recordCount: 5,
        chainId: 31337,
      }),
      positions: [[1, 5]],
    });

    // A topic nobody watches costs no stream.
    await redis.del(keys.watchedTopics);
    const quiet = await seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 2 }],
    });
    await anchorOnChain(chain, contract, quiet);
    await mine(chain.publicClient, 1);
    await app.syncToHead();
    expect(await redis.xlen(keys.topicAnchoring('test.topic'))).toBe(2);
  });

  it('behavior: the cursor persists across a restart (no duplicate events or receipt jobs)', async () => {
    const first = await seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 4 }],
    });
    await anchorOnChain(chain, contract, first);
    const app1 = makeApp();
    const before = await app1.syncToHead();
    await app1.stop();
    expect(before.receipts.jobs).toBe(1);

    const app2 = makeApp();
    const after = await app2.syncToHead();
    expect(after.events).toBe(0);
    expect(after.cursor).toBe(before.cursor);
    expect(after.receipts.jobs).toBe(0);
    expect(await eventRows()).toHaveLength(1);
    expect(await waitingJobs('relay-a')).toHaveLength(1);

    // A crash between enqueueing and marking: the same job id is added again and deduplicated.
    await database.db.updateTable('receipt_notices').set({ sent_at: null }).execute();
    const resent = await app2.syncOnce();
    expect(resent.receipts.jobs).toBe(1);
    expect(await waitingJobs('relay-a')).toHaveLength(1);

    // The same after the relay delivered the job (removed on completion): the job id no
    // longer exists, the deduplication key (RECEIPT_DEDUP_TTL_MS) still does.
    const delivered = relayWorker('relay-a');
    await vi.waitFor(() => expect(delivered).toHaveLength(1), { timeout: 10_000 });
    await vi.waitFor(async () => expect(await waitingJobs('relay-a')).toHaveLength(0), {
      timeout: 10_000,
    });
    await database.db.updateTable('receipt_notices').set({ sent_at: null }).execute();
    expect((await app2.syncOnce()).receipts.jobs).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(delivered.map((job) => job.id)).toEqual([
      receiptJobId(first.batchId, 1, 'relay-a', 0, 1),
    ]);

    // The restarted indexer goes on from its cursor.
    const second = await seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 1 }],
    });
    await anchorOnChain(chain, contract, second);
    const later = await app2.syncToHead();
    expect(later.events).toBe(1);
    expect((await eventRows()).map((e) => e.batch_id)).toEqual([first.batchId, second.batchId]);
    await vi.waitFor(() => expect(delivered).toHaveLength(2), { timeout: 10_000 });
    expect(delivered[1]?.id).toBe(receiptJobId(second.batchId, 1, 'relay-a', 0, 1));
  });

  it('behavior: reads at most MAX_LOG_RANGE blocks per eth_getLogs', async () => {
    const batches = [];
    for (let i = 0; i < 8; i++) {
      const batch = await seedBatch(database.db, {
        contract,
        sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 1 }],
      });
      await anchorOnChain(chain, contract, batch);
      if (i % 3 === 0) await mine(chain.publicClient, 4);
      batches.push(batch);
    }
    const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    const app = makeApp({ maxLogRange: 3 });

    let previous = BigInt(deploymentBlock) - 1n;
    const steps: SyncOnceResult[] = [];
    for (;;) {
      const step = await app.syncOnce();
      steps.push(step);
      // Range scans (deeper than FINALITY_DEPTH) are at most MAX_LOG_RANGE wide.
      if (step.mode === 'range') expect(step.cursor - previous).toBeLessThanOrEqual(3n);
      previous = step.cursor;
      if (step.caughtUp) break;
    }
    expect(previous).toBe(head);
    const deep = head - 3n;
    expect(steps.filter((step) => step.mode === 'range').length).toBe(
      Math.ceil(Number(deep - BigInt(deploymentBlock) + 1n) / 3),
    );
    expect((await eventRows()).map((e) => e.batch_id)).toEqual(batches.map((b) => b.batchId));
    for (const batch of batches)
      expect(['included', 'final']).toContain((await batchRow(batch.batchId)).status);
  });

  it('behavior: halves the range when eth_getLogs fails (response body cap)', async () => {
    const batches = [];
    for (let i = 0; i < 12; i++) {
      const batch = await seedBatch(database.db, {
        contract,
        sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 1 }],
      });
      await anchorOnChain(chain, contract, batch);
      batches.push(batch);
    }
    // viem refuses bodies over maxResponseBodySize: a block header fits, twelve logs do not.
    const capped = createPublicClient({
      chain: anvilChain(anvil.rpcUrl),
      transport: http(anvil.rpcUrl, { retryCount: 0, maxResponseBodySize: 4096 }),
    }) as PublicClient;
    const app = makeApp({ maxLogRange: 2000 }, capped);
    const warn = vi.spyOn(logger, 'warn');
    try {
      await app.syncToHead();
      const splits = warn.mock.calls.filter(
        ([, message]) => message === 'eth_getLogs failed; retrying with a smaller block range',
      );
      expect(splits.length).toBeGreaterThan(0);
    } finally {
      warn.mockRestore();
    }
    expect((await eventRows()).map((e) => e.batch_id)).toEqual(batches.map((b) => b.batchId));
  });

  it('behavior: stores an event for a batch this database does not know, and goes on', async () => {
    const foreign = { batchId: randomHex32(), merkleRoot: randomHex32(), recordCount: 5 };
    const ours = await seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 2 }],
    });
    await anchorOnChain(chain, contract, foreign);
    await anchorOnChain(chain, contract, ours);

    const result = await makeApp().syncToHead();
    expect(result.caughtUp).toBe(true);
    const events = await eventRows();
    expect(events.map((e) => e.batch_id)).toEqual([foreign.batchId, ours.batchId]);
    expect(events[0]).toMatchObject({ merkle_root: foreign.merkleRoot, record_count: 5 });
    expect(await database.db.selectFrom('batches').select('batch_id').execute()).toEqual([
      { batch_id: ours.batchId },
    ]);
    expect((await batchRow(ours.batchId)).status).toBe('included');
    expect((await waitingJobs('relay-a')).map((job) => job.id)).toEqual([
      receiptJobId(ours.batchId, 1, 'relay-a', 0, 1),
    ]);
  });

  it('behavior: an event whose root differs from the stored batch leaves the batch unanchored', async () => {
    const batch = await seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 2 }],
    });
    await anchorOnChain(chain, contract, { ...batch, merkleRoot: randomHex32() });
    const error = vi.spyOn(logger, 'error');
    try {
      const result = await makeApp().syncToHead();
      expect(result.result?.mismatched).toHaveLength(1);
      expect(error).toHaveBeenCalled();
    } finally {
      error.mockRestore();
    }
    expect(await eventRows()).toHaveLength(1);
    expect((await batchRow(batch.batchId)).status).toBe('sent');
    expect(await waitingJobs('relay-a')).toHaveLength(0);
  });

  it('behavior: CONFIRMATIONS holds a batch back until enough blocks follow it', async () => {
    const batch = await seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 3 }],
    });
    await mine(chain.publicClient, 5);
    const anchored = await anchorOnChain(chain, contract, batch);
    const app = makeApp({ confirmations: 3, finalityDepth: 6 });

    let result = await app.syncToHead();
    expect(result.cursor).toBe(anchored.blockNumber - 3n);
    expect((await batchRow(batch.batchId)).status).toBe('sent');

    await mine(chain.publicClient, 2);
    result = await app.syncToHead();
    expect(result.cursor).toBe(anchored.blockNumber - 1n);
    expect(await eventRows()).toHaveLength(0);
    expect(await waitingJobs('relay-a')).toHaveLength(0);

    await mine(chain.publicClient, 1);
    result = await app.syncToHead();
    expect(result.cursor).toBe(anchored.blockNumber);
    expect((await batchRow(batch.batchId)).status).toBe('included');
    const jobs = await waitingJobs('relay-a');
    expect(jobs).toHaveLength(1);
    expect((await receiptsIn(jobs[0]!.data))[0]?.receipt.blockNumber).toBe(
      Number(anchored.blockNumber),
    );
  });

  it('behavior: chunks a large group of receipts into several jobs', async () => {
    const batch = await seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 5 }],
    });
    await anchorOnChain(chain, contract, batch);
    const result = await makeApp({ receiptsPerJob: 2 }).syncToHead();
    expect(result.receipts).toMatchObject({ notices: 1, jobs: 3, receipts: 5, invalid: 0 });
    const jobs = await waitingJobs('relay-a');
    const base = receiptJobId(batch.batchId, 1, 'relay-a', 0, 1);
    expect(jobs.map((job) => job.id).sort()).toEqual([`${base}-0`, `${base}-1`, `${base}-2`]);
    const ids = (await receiptsOfJobs(jobs)).map(({ receipt }) => receipt.recordId).sort();
    expect(ids).toEqual(batch.records.map((r) => r.recordId).sort());
  });

  it('error: a batch whose stored records no longer rebuild its root gets no receipts, and holds up no other', async () => {
    const tampered = await seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 3 }],
    });
    const healthy = await seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 2 }],
    });
    await anchorOnChain(chain, contract, tampered);
    await anchorOnChain(chain, contract, healthy);
    // A leaf field changed after the batch was built: its proofs cannot be rebuilt.
    await database.db
      .updateTable('records')
      .set({ subject: 'mallory' })
      .where('record_id', '=', tampered.records[1]!.recordId)
      .execute();
    const result = await makeApp().syncToHead();
    expect(result.receipts).toMatchObject({ notices: 2, jobs: 1, receipts: 2, invalid: 3 });
    const jobs = await waitingJobs('relay-a');
    expect((await receiptsOfJobs(jobs)).map(({ receipt }) => receipt.batchId)).toEqual([
      healthy.batchId,
      healthy.batchId,
    ]);
  });

  it('behavior: rewinds when the cursor block leaves the chain (reorg) and re-anchors', async () => {
    const session = () => [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 3 }];
    const kept = await seedBatch(database.db, { contract, sessions: session() });
    const keptAnchor = await anchorOnChain(chain, contract, kept);
    const batch = await seedBatch(database.db, { contract, sessions: session() });
    const snapshot = await chain.publicClient.request({ method: 'evm_snapshot' as never });
    const first = await anchorOnChain(chain, contract, batch);
    const app = makeApp();
    await app.syncToHead();
    expect((await batchRow(batch.batchId)).status).toBe('included');
    expect(await waitingJobs('relay-a')).toHaveLength(2);

    // Drop the anchoring block and grow a different chain past it: the next header's parent
    // is not the cursor's block.
    await chain.publicClient.request({
      method: 'evm_revert' as never,
      params: [snapshot] as never,
    });
    await mine(chain.publicClient, 2);
    const step = await app.syncOnce();
    expect(step.rewound).toEqual({
      to: keptAnchor.blockNumber,
      batchIds: [batch.batchId],
      events: 1,
    });
    expect((await eventRows()).map((e) => e.batch_id)).toEqual([kept.batchId]);
    expect(await batchRow(batch.batchId)).toMatchObject({
      status: 'sent',
      block_hash: null,
      revision: 2,
    });
    expect((await batchRow(kept.batchId)).status).toBe('included');
    // Every record of the rewound batch is told its block left the chain (revision 2).
    const reorged = (await waitingJobs('relay-a')).find(
      (job) => job.id === receiptJobId(batch.batchId, 2, 'relay-a', 0, 1),
    );
    // A later notice: the session's number of records, not the records again.
    expect((reorged!.data as ReceiptNoticeJob).sessions).toEqual([
      { sessionId: batch.records[0]!.sessionId, recordCount: 3 },
    ]);
    expect((await receiptsIn(reorged!.data)).map(({ receipt }) => receipt.status)).toEqual([
      'reorged',
      'reorged',
      'reorged',
    ]);
    expect((await receiptsIn(reorged!.data))[0]?.receipt).toMatchObject({
      blockHash: first.blockHash,
      confirmations: 0,
    });

    const second = await anchorOnChain(chain, contract, batch);
    expect(second.blockHash).not.toBe(first.blockHash);
    await app.syncToHead();
    const events = await eventRows();
    expect(events.map((e) => e.block_hash)).toEqual([keptAnchor.blockHash, second.blockHash]);
    expect(await batchRow(batch.batchId)).toMatchObject({
      status: 'included',
      block_hash: second.blockHash,
      revision: 3,
    });
    const job = (await waitingJobs('relay-a')).find(
      (j) => j.id === receiptJobId(batch.batchId, 3, 'relay-a', 0, 1),
    );
    for (const { receipt } of await receiptsIn(job!.data)) {
      expect(receipt).toMatchObject({ status: 'included', revision: 3 });
      expect(receipt.blockHash).toBe(second.blockHash);
      expect(verifyReceiptProof(receipt)).toBe(true);
    }

    // A chain that got shorter than the cursor: back to the newest header still on the chain.
    const snapshot2 = await chain.publicClient.request({ method: 'evm_snapshot' as never });
    await mine(chain.publicClient, 3);
    await app.syncToHead();
    await chain.publicClient.request({
      method: 'evm_revert' as never,
      params: [snapshot2] as never,
    });
    const shorter = await app.syncOnce();
    expect(shorter.rewound).toEqual({ to: second.blockNumber, batchIds: [], events: 0 });
    expect(shorter.cursor).toBe(second.blockNumber);
    expect(await eventRows()).toHaveLength(2);

    // FINALITY_DEPTH (3) blocks on top: final, with one more notice (revision 4).
    await mine(chain.publicClient, 3);
    await app.syncToHead();
    expect(await batchRow(batch.batchId)).toMatchObject({ status: 'final', revision: 4 });
    const final = (await waitingJobs('relay-a')).find(
      (j) => j.id === receiptJobId(batch.batchId, 4, 'relay-a', 0, 1),
    );
    expect((await receiptsIn(final!.data))[0]?.receipt).toMatchObject({
      status: 'final',
      blockHash: second.blockHash,
      confirmations: 4,
    });
  });

  it('error: a wrong CHAIN_ID fails fast', async () => {
    const app = makeApp({ chainId: 1 });
    await expect(app.start()).rejects.toBeInstanceOf(ChainIdMismatchError);
    await expect(app.start()).rejects.toMatchObject({ details: { expected: 1, actual: 31337 } });
    expect(await cursorRow()).toBeUndefined();
  });
});
