import {
  addRecordBatches,
  createKeys,
  createQueue,
  createRedisConnection,
  type Keys,
  type TypedQueue,
  watchTopics,
} from '@streamanchor/bus';
import type { AcceptedRecord } from '@streamanchor/protocol';
import { createLogger } from '@streamanchor/service-kit';
import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createRecordPipeline, type Outcome, RECORD_JOB_OPTIONS } from './pipeline';
import { newRecordId } from './validate';

const logger = createLogger({ service: 'rtc-relay', level: 'silent' });
let redis: Redis;
let prefix: string;
let queue: TypedQueue<'records'>;
let keys: Keys;
type Jobs = readonly (readonly AcceptedRecord[])[];
/** What the pipeline queues a group with; tests wrap it to hold or fail adds. */
let add: (jobs: Jobs) => Promise<unknown>;
const queueGroup = (jobs: Jobs) => add(jobs);

const record = (n: number, sessionId = 'AAAAAAAAAAAAAAAAAAAAAA'): AcceptedRecord => ({
  recordId: newRecordId(),
  topic: 'demo',
  subject: 'alice',
  contentHash: `0x${'00'.repeat(32)}`,
  acceptedAt: n,
  payload: String(n),
  relayId: 'relay-1',
  sessionId,
});

beforeEach(async () => {
  redis = createRedisConnection(TEST_REDIS_URL);
  prefix = testRedisPrefix('pipeline');
  keys = createKeys(prefix);
  queue = createQueue({ connection: redis, keys }, 'records');
  await queue.waitUntilReady();
  add = (jobs) =>
    addRecordBatches(queue, keys, jobs, { streamMaxLen: 1000, jobOptions: RECORD_JOB_OPTIONS });
});

afterEach(async () => {
  await queue.close();
  await deleteRedisPrefix(prefix);
  redis.disconnect();
});

/**
 * Makes the queue's first add wait until `release()`; later adds go through at once.
 * `calls` counts the adds made so far.
 */
function holdFirstAdd(): { readonly calls: number; release(): void } {
  const realAdd = add;
  let release!: () => void;
  const firstHeld = new Promise<void>((resolve) => {
    release = resolve;
  });
  let calls = 0;
  add = async (jobs) => {
    calls += 1;
    if (calls === 1) await firstHeld;
    return realAdd(jobs);
  };
  return {
    get calls() {
      return calls;
    },
    release: () => release(),
  };
}

describe('record pipeline', () => {
  test('default: records are grouped into jobs keyed by their first record, outcomes in order', async () => {
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 5,
      flushMax: 100,
      bufferMax: 10_000,
      logger,
    });
    const records = Array.from({ length: 250 }, (_, i) => record(i));
    const outcomes: [number, Outcome][] = [];
    for (const [i, r] of records.entries())
      pipeline.submit(r, (outcome) => outcomes.push([i, outcome]));
    await pipeline.drain();
    expect(outcomes.map(([i]) => i)).toEqual(records.map((_, i) => i));
    expect(outcomes.every(([, o]) => o.ok)).toBe(true);

    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((job) => job.data.records.length).sort((a, b) => b - a)).toEqual([
      100, 100, 50,
    ]);
    for (const job of jobs) {
      expect(job.id).toBe(`records-${job.data.records[0]!.recordId}`);
      expect(job.opts).toMatchObject({
        attempts: RECORD_JOB_OPTIONS.attempts,
        backoff: RECORD_JOB_OPTIONS.backoff,
      });
    }
    expect(jobs.flatMap((job) => job.data.records)).toHaveLength(250);
    expect(pipeline.stats()).toMatchObject({ pending: 0, jobsAdded: 3, recordsQueued: 250 });
  });

  test('behavior: after close, submissions are refused with shutting_down', async () => {
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 5,
      flushMax: 100,
      bufferMax: 10_000,
      logger,
    });
    const first: Outcome[] = [];
    pipeline.submit(record(1), (o) => first.push(o));
    await pipeline.close();
    expect(first).toEqual([{ ok: true }]);
    const late: Outcome[] = [];
    pipeline.submit(record(2), (o) => late.push(o));
    expect(late).toEqual([{ ok: false, code: 'shutting_down', detail: expect.any(String) }]);
  });

  test('error: beyond bufferMax records are refused with unavailable, the rest still queued', async () => {
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 1000,
      flushMax: 100,
      bufferMax: 3,
      logger,
    });
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 5; i++) pipeline.submit(record(i), (o) => outcomes.push(o));
    // The last two were refused at once; the first three wait for the flush.
    expect(outcomes.map((o) => o.ok || o.code)).toEqual(['unavailable', 'unavailable']);
    await pipeline.drain();
    expect(outcomes.map((o) => o.ok || o.code)).toEqual([
      'unavailable',
      'unavailable',
      true,
      true,
      true,
    ]);
    expect(await queue.getJobCounts('waiting')).toMatchObject({ waiting: 1 });
  });

  test('behavior: an add whose reply was lost is retried with the same job id: acked, one job', async () => {
    // Stand-in for a network fault: Redis performs the first add, then the reply is lost
    // (the call throws). A real socket cut at that instant cannot be arranged reliably here.
    // A relay has subscribers to the topic: its records go to its stream too.
    await watchTopics(redis, keys, ['demo'], 60_000);
    const realAdd = add;
    let calls = 0;
    add = async (jobs) => {
      calls += 1;
      const positions = await realAdd(jobs);
      if (calls === 1) throw new Error('connection reset before the reply');
      return positions;
    };
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 1,
      flushMax: 100,
      bufferMax: 100,
      logger,
    });
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 3; i++) pipeline.submit(record(i), (o) => outcomes.push(o));
    await pipeline.drain();
    expect(calls).toBe(2);
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true]);
    expect(await queue.getJobCounts('waiting')).toMatchObject({ waiting: 1 });
    // Given positions and fanned out once: subscribers do not get the records twice.
    expect(await redis.get(keys.topicPosition('demo'))).toBe('3');
    expect(await redis.xlen(keys.topicStream('demo'))).toBe(3);
  });

  test('behavior: one session cannot fill the shared buffer; it gets rate_limited, others are queued', async () => {
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 1000,
      flushMax: 100,
      bufferMax: 10,
      sessionBufferMax: 5,
      logger,
    });
    const flooder: Outcome[] = [];
    const other: Outcome[] = [];
    for (let i = 0; i < 8; i++)
      pipeline.submit(record(i, 'FLOODFLOODFLOODFLOOD00'), (o) => flooder.push(o));
    for (let i = 0; i < 5; i++)
      pipeline.submit(record(i, 'OTHEROTHEROTHEROTHER00'), (o) => other.push(o));
    // Refused at once, with a retry hint; the other session's records all wait for the flush.
    expect(flooder).toEqual(
      Array(3).fill({
        ok: false,
        code: 'rate_limited',
        detail: expect.any(String),
        retryAfterMs: expect.any(Number),
      }),
    );
    expect((flooder[0] as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    expect(other).toEqual([]);
    expect(pipeline.stats()).toMatchObject({
      pending: 10,
      recordsRateLimited: 3,
      recordsRefused: 0,
    });
    await pipeline.drain();
    expect(other.map((o) => o.ok)).toEqual(Array(5).fill(true));
    expect(flooder.slice(3).map((o) => o.ok)).toEqual(Array(5).fill(true));
    // Once its records were queued, the session has its share again.
    const later: Outcome[] = [];
    for (let i = 0; i < 5; i++)
      pipeline.submit(record(i, 'FLOODFLOODFLOODFLOOD00'), (o) => later.push(o));
    await pipeline.drain();
    expect(later.map((o) => o.ok)).toEqual(Array(5).fill(true));
  });

  test('behavior: with flushMs 0 the records of one event-loop turn go in one job, queued without a timer', async () => {
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 0,
      flushMax: 100,
      bufferMax: 100,
      logger,
    });
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 3; i++) pipeline.submit(record(i), (o) => outcomes.push(o));
    await new Promise((resolve) => setImmediate(resolve));
    expect(pipeline.stats()).toMatchObject({ pending: 3, jobsAdded: 0 });
    await pipeline.drain();
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true]);
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((job) => job.data.records.length)).toEqual([3]);
  });

  test('behavior: later adds go out while the first is in flight; outcomes wait for their own add and keep submission order', async () => {
    // The first add is held until released; the second completes at once.
    const adds = holdFirstAdd();
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 0,
      flushMax: 2,
      bufferMax: 100,
      addsInFlight: 2,
      logger,
    });
    const order: number[] = [];
    for (let i = 0; i < 6; i++) pipeline.submit(record(i), (o) => o.ok && order.push(i));
    // Two slots: the second add goes out beside the held first one, and once it is done
    // its slot takes the third group, all while the first is still held.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(adds.calls).toBe(3);
    expect(await queue.getJobCounts('waiting')).toMatchObject({ waiting: 2 });
    // Those jobs are queued, but nothing is acked before the first job is.
    expect(order).toEqual([]);
    expect(pipeline.stats()).toMatchObject({ pending: 6, jobsAdded: 2 });
    adds.release();
    await pipeline.drain();
    expect(adds.calls).toBe(3);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(await queue.getJobCounts('waiting')).toMatchObject({ waiting: 3 });
  });

  test('behavior: by default the next group waits for the add in flight, then takes everything', async () => {
    const adds = holdFirstAdd();
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 0,
      flushMax: 100,
      bufferMax: 100,
      logger,
    });
    pipeline.submit(record(0), () => {});
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 1; i < 5; i++) pipeline.submit(record(i), () => {});
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(adds.calls).toBe(1);
    adds.release();
    await pipeline.drain();
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((job) => job.data.records.length).sort()).toEqual([1, 4]);
  });

  test('behavior: with jobsPerAdd, the records waiting for the add in flight go out in one add of several jobs of at most flushMax, in order', async () => {
    await watchTopics(redis, keys, ['demo'], 60_000);
    const adds = holdFirstAdd();
    const sizes: number[][] = [];
    const heldAdd = add;
    add = (jobs) => {
      sizes.push(jobs.map((job) => job.length));
      return heldAdd(jobs);
    };
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 0,
      flushMax: 2,
      jobsPerAdd: 3,
      bufferMax: 100,
      logger,
    });
    const acked: number[] = [];
    pipeline.submit(record(0), (o) => o.ok && acked.push(0));
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 1; i < 9; i++) pipeline.submit(record(i), (o) => o.ok && acked.push(i));
    await new Promise((resolve) => setTimeout(resolve, 20));
    // One add in flight: the other eight wait for it.
    expect(adds.calls).toBe(1);
    adds.release();
    await pipeline.drain();
    // Then one add of three jobs (six records), then the last two.
    expect(sizes).toEqual([[1], [2, 2, 2], [2]]);
    expect(acked).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(pipeline.stats()).toMatchObject({ pending: 0, jobsAdded: 5, recordsQueued: 9 });
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((job) => job.data.records.length).sort()).toEqual([1, 2, 2, 2, 2]);
    // Positions follow submission (and ack) order across the jobs of one add.
    const entries = (await redis.xrange(keys.topicStream('demo'), '-', '+')) as [
      string,
      string[],
    ][];
    expect(entries.map(([id, fields]) => [id, JSON.parse(fields[1]!).payload])).toEqual(
      Array.from({ length: 9 }, (_, i) => [`0-${i + 1}`, i]),
    );
  });

  test('behavior: the outcomes of a group are reported before the next group, waiting meanwhile, is handed to its add', async () => {
    const adds = holdFirstAdd();
    const events: string[] = [];
    const heldAdd = add;
    add = (jobs) => {
      events.push(`add ${jobs.flat().length}`);
      return heldAdd(jobs);
    };
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 0,
      flushMax: 100,
      jobsPerAdd: 4,
      bufferMax: 100,
      logger,
    });
    pipeline.submit(record(0), (o) => events.push(`outcome 0 ${o.ok}`));
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 1; i < 4; i++)
      pipeline.submit(record(i), (o) => events.push(`outcome ${i} ${o.ok}`));
    adds.release();
    await pipeline.drain();
    // Building a large group takes a while: the acks of the one before do not wait for it.
    expect(events).toEqual([
      'add 1',
      'outcome 0 true',
      'add 3',
      'outcome 1 true',
      'outcome 2 true',
      'outcome 3 true',
    ]);
  });

  test('behavior: with jobsPerAdd, a failed add is retried whole before the next one: positions follow ack order', async () => {
    await watchTopics(redis, keys, ['demo'], 60_000);
    const realAdd = add;
    let failures = 1;
    add = async (jobs) => {
      if (failures > 0) {
        failures -= 1;
        throw new Error('LOADING Redis is loading the dataset in memory');
      }
      return realAdd(jobs);
    };
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 0,
      flushMax: 2,
      jobsPerAdd: 2,
      bufferMax: 100,
      logger,
    });
    const acked: number[] = [];
    for (let i = 0; i < 7; i++) pipeline.submit(record(i), (o) => o.ok && acked.push(i));
    await pipeline.drain();
    expect(acked).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const entries = (await redis.xrange(keys.topicStream('demo'), '-', '+')) as [
      string,
      string[],
    ][];
    expect(entries.map(([, fields]) => JSON.parse(fields[1]!).payload)).toEqual([
      0, 1, 2, 3, 4, 5, 6,
    ]);
  });

  test('behavior: by default a group whose add failed is retried before the next group is queued: positions follow ack order', async () => {
    await watchTopics(redis, keys, ['demo'], 60_000);
    const realAdd = add;
    let failures = 1;
    add = async (jobs) => {
      if (failures > 0) {
        failures -= 1;
        throw new Error('LOADING Redis is loading the dataset in memory');
      }
      return realAdd(jobs);
    };
    const pipeline = createRecordPipeline({
      queueGroup,
      flushMs: 0,
      flushMax: 2,
      bufferMax: 100,
      logger,
    });
    const acked: number[] = [];
    for (let i = 0; i < 6; i++) pipeline.submit(record(i), (o) => o.ok && acked.push(i));
    await pipeline.drain();
    expect(acked).toEqual([0, 1, 2, 3, 4, 5]);
    // Positions in the topic's stream, in the order of the records' acks.
    const entries = (await redis.xrange(keys.topicStream('demo'), '-', '+')) as [
      string,
      string[],
    ][];
    expect(entries.map(([id, fields]) => [id, JSON.parse(fields[1]!).payload])).toEqual([
      ['0-1', 0],
      ['0-2', 1],
      ['0-3', 2],
      ['0-4', 3],
      ['0-5', 4],
      ['0-6', 5],
    ]);
  });
});
