import {
  addRecordBatch,
  type BusDeps,
  createKeys,
  createQueue,
  createQueueEvents,
  createRedisConnection,
  jobIds,
  type TypedQueue,
  type TypedWorker,
} from '@streamanchor/bus';
import type { DatabaseHandle } from '@streamanchor/db';
import type { AcceptedRecord } from '@streamanchor/protocol';
import { createLogger, type Logger } from '@streamanchor/service-kit';
import {
  createTestDatabase,
  deleteRedisPrefix,
  TEST_DATABASE_KINDS,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import type { QueueEvents } from 'bullmq';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeRecords } from '../test-fixtures';
import { storeJobs } from './store';
import { createGroupCommit, createIngestWorker } from './worker';

const fanout = { streamMaxLen: 1000, jobOptions: { removeOnComplete: false } };

describe.each(TEST_DATABASE_KINDS)('topic positions on %s', (kind) => {
  let handle: DatabaseHandle;
  let bus: BusDeps;
  let queue: TypedQueue<'records'>;
  let queueEvents: QueueEvents | undefined;
  let worker: TypedWorker<'records'> | undefined;

  beforeEach(async () => {
    handle = await createTestDatabase(kind);
    bus = {
      connection: createRedisConnection(TEST_REDIS_URL, 'writer-positions-test'),
      keys: createKeys(testRedisPrefix('writer-positions')),
    };
    queue = createQueue(bus, 'records');
  });
  afterEach(async () => {
    await worker?.close();
    await queueEvents?.close();
    worker = undefined;
    queueEvents = undefined;
    await queue.close();
    await deleteRedisPrefix(bus.keys.prefix);
    bus.connection.disconnect();
    await handle.close();
  });

  /** Starts the ingest worker on this test's queue. */
  async function startWorker(): Promise<QueueEvents> {
    queueEvents = createQueueEvents(bus, 'records');
    await queueEvents.waitUntilReady();
    worker = createIngestWorker({
      bus,
      db: handle.db,
      logger: createLogger({ service: 'chain-writer-test', level: 'silent' }),
      concurrency: 4,
    });
    await worker.waitUntilReady();
    return queueEvents;
  }

  /** Stored records' positions, by record id. */
  const storedPositions = async () =>
    Object.fromEntries(
      (await handle.db.selectFrom('records').select(['record_id', 'position']).execute()).map(
        (row) => [row.record_id, row.position === null ? null : Number(row.position)],
      ),
    );
  const positionsKeyExists = (records: readonly AcceptedRecord[]) =>
    bus.connection.exists(bus.keys.positions(jobIds.recordBatch(records[0]!.recordId)));

  it('default: a job added with addRecordBatch stores each record with its position, then its positions key is gone', async () => {
    const events = await startWorker();
    const [a1, a2] = makeRecords(2, { topic: 'a' });
    const [b1] = makeRecords(1, { topic: 'b' });
    // Topic a already holds one record from an earlier group.
    const [earlier] = makeRecords(1, { topic: 'a' });
    expect(await addRecordBatch(queue, bus.keys, [earlier!], fanout)).toEqual([1]);
    const records = [a1!, b1!, a2!];
    expect(await addRecordBatch(queue, bus.keys, records, fanout)).toEqual([2, 1, 3]);
    const job = await queue.getJob(jobIds.recordBatch(a1!.recordId));
    expect(await job!.waitUntilFinished(events, 30_000)).toEqual({ stored: 3 });
    const first = await queue.getJob(jobIds.recordBatch(earlier!.recordId));
    expect(await first!.waitUntilFinished(events, 30_000)).toEqual({ stored: 1 });

    expect(await storedPositions()).toEqual({
      [earlier!.recordId]: 1,
      [a1!.recordId]: 2,
      [b1!.recordId]: 1,
      [a2!.recordId]: 3,
    });
    expect(await positionsKeyExists(records)).toBe(0);
    expect(await positionsKeyExists([earlier!])).toBe(0);
  });

  it('behavior: a job added with a plain queue.add stores its records without positions', async () => {
    const events = await startWorker();
    const records = makeRecords(3);
    const job = await queue.add(
      'recordBatch',
      { records },
      { jobId: jobIds.recordBatch(records[0]!.recordId) },
    );
    expect(await job.waitUntilFinished(events, 30_000)).toEqual({ stored: 3 });
    expect(await storedPositions()).toEqual(
      Object.fromEntries(records.map((record) => [record.recordId, null])),
    );
  });

  it('behavior: a group of several jobs reads all their positions in one MGET, stores each job’s, and unlinks their keys at once', async () => {
    const mget = vi.spyOn(bus.connection, 'mget');
    const unlink = vi.spyOn(bus.connection, 'unlink');
    const group = createGroupCommit(handle.db, { bus });
    const jobs = Array.from({ length: 5 }, () => makeRecords(3, { topic: 'busy' }));
    for (const records of jobs) await addRecordBatch(queue, bus.keys, records, fanout);
    // One job queued the old way, in the same group.
    const plain = makeRecords(2, { topic: 'busy' });
    const results = await Promise.all([
      ...jobs.map((records) => group.store(jobIds.recordBatch(records[0]!.recordId), records)),
      group.store(jobIds.recordBatch(plain[0]!.recordId), plain),
    ]);
    expect(results.map((r) => r.stored)).toEqual([3, 3, 3, 3, 3, 2]);
    // The first job goes alone, the five that came meanwhile together: two groups, two
    // MGETs and two UNLINKs.
    expect(group.stats).toEqual({ groups: 2, jobs: 6 });
    expect(mget).toHaveBeenCalledTimes(2);
    expect(mget.mock.calls[1]).toHaveLength(5);
    expect(unlink).toHaveBeenCalledTimes(2);

    const stored = await storedPositions();
    expect(jobs.flat().map((record) => stored[record.recordId])).toEqual(
      Array.from({ length: 15 }, (_, i) => i + 1),
    );
    expect(plain.map((record) => stored[record.recordId])).toEqual([null, null]);
    for (const records of jobs) expect(await positionsKeyExists(records)).toBe(0);
  });

  it('behavior: a record stored twice keeps its first position; a dead-lettered item leaves a gap', async () => {
    const group = createGroupCommit(handle.db, { bus });
    const first = makeRecords(2, { topic: 'a' });
    await addRecordBatch(queue, bus.keys, first, fanout);
    expect((await group.store(jobIds.recordBatch(first[0]!.recordId), first)).stored).toBe(2);
    // Another relay's job holds the second record again, and a record the writer refuses.
    const [fresh, bad] = makeRecords(2, { topic: 'a' });
    const again = [fresh!, { ...bad!, recordId: 'nope' as AcceptedRecord['recordId'] }, first[1]!];
    const second = await addRecordBatch(queue, bus.keys, again, fanout);
    expect(second).toEqual([3, 4, 5]);
    const result = await group.store(jobIds.recordBatch(fresh!.recordId), again);
    expect([result.stored, result.deadLetters.map((letter) => letter.itemIndex)]).toEqual([1, [1]]);
    expect(await storedPositions()).toEqual({
      [first[0]!.recordId]: 1,
      [first[1]!.recordId]: 2,
      [fresh!.recordId]: 3,
    });
    // Twice in one group: the first job's position.
    const [shared] = makeRecords(1, { topic: 'b' });
    await storeJobs(handle.db, [
      { jobId: 'x', items: [shared!], positions: [10] },
      { jobId: 'y', items: [shared!], positions: [20] },
    ]);
    expect((await storedPositions())[shared!.recordId]).toBe(10);
  });

  it('behavior: a group whose insert fails on one record’s data keeps every other record’s position (per-job retry, bisection)', async () => {
    await sql`alter table records add constraint test_poison check (topic <> 'poison.topic')`.execute(
      handle.db,
    );
    const good = makeRecords(5);
    const [poison] = makeRecords(1, { topic: 'poison.topic' });
    const results = await storeJobs(handle.db, [
      { jobId: 'first', items: good.slice(0, 2), positions: [1, 2] },
      { jobId: 'poisoned', items: [good[2]!, poison!, good[3]!], positions: [3, 1, 4] },
      { jobId: 'last', items: good.slice(4), positions: [5] },
    ]);
    expect(results.map((r) => [r.stored, r.deadLetters.map((l) => l.itemIndex)])).toEqual([
      [2, []],
      [2, [1]],
      [1, []],
    ]);
    const stored = await storedPositions();
    expect(good.map((record) => stored[record.recordId])).toEqual([1, 2, 3, 4, 5]);
  });

  it('error: positions that do not fit their job are not used, and said so', async () => {
    const warnings: [object, string][] = [];
    const logger = {
      warn: (fields: object, message: string) => warnings.push([fields, message]),
    } as unknown as Logger;
    const group = createGroupCommit(handle.db, { bus, logger });
    const records = makeRecords(3);
    const jobId = jobIds.recordBatch(records[0]!.recordId);
    await bus.connection.set(bus.keys.positions(jobId), '1,2');
    expect((await group.store(jobId, records)).stored).toBe(3);
    expect(Object.values(await storedPositions())).toEqual([null, null, null]);
    expect(warnings).toEqual([
      [
        { jobId, records: 3, positions: 2 },
        'positions do not fit their records job; its records are stored without positions',
      ],
    ]);
    // The key is deleted all the same: the job is stored.
    expect(await positionsKeyExists(records)).toBe(0);
  });

  it('error: positions keys that cannot be deleted are logged; the jobs are stored', async () => {
    const warnings: string[] = [];
    const logger = {
      warn: (_: object, message: string) => warnings.push(message),
    } as unknown as Logger;
    vi.spyOn(bus.connection, 'unlink').mockRejectedValueOnce(new Error('READONLY'));
    const group = createGroupCommit(handle.db, { bus, logger });
    const records = makeRecords(2, { topic: 'a' });
    await addRecordBatch(queue, bus.keys, records, fanout);
    expect((await group.store(jobIds.recordBatch(records[0]!.recordId), records)).stored).toBe(2);
    expect(Object.values(await storedPositions())).toEqual([1, 2]);
    expect(warnings).toEqual(['could not delete the stored jobs’ positions keys; they expire']);
    expect(await positionsKeyExists(records)).toBe(1);
  });

  it('error: positions that cannot be read fail the group (retried); nothing is stored without them', async () => {
    vi.spyOn(bus.connection, 'mget').mockRejectedValueOnce(new Error('LOADING'));
    const group = createGroupCommit(handle.db, { bus });
    const records = makeRecords(2, { topic: 'a' });
    await addRecordBatch(queue, bus.keys, records, fanout);
    const jobId = jobIds.recordBatch(records[0]!.recordId);
    await expect(group.store(jobId, records)).rejects.toThrow('LOADING');
    expect(await storedPositions()).toEqual({});
    // BullMQ's retry finds them.
    expect((await group.store(jobId, records)).stored).toBe(2);
    expect(Object.values(await storedPositions())).toEqual([1, 2]);
  });
});
