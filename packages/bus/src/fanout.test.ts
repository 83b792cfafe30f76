import type { AcceptedRecord } from '@streamanchor/protocol';
import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { createRedisConnection } from './connection';
import {
  addRecordBatch,
  addRecordBatches,
  compareEntryIds,
  entryIdOf,
  forgetJobPositions,
  positionOfEntryId,
  readJobPositions,
  STREAM_FIELD,
  streamEntry,
  watchTopics,
} from './fanout';
import { createKeys, type Keys } from './keys';
import { jobIds } from './queues';
import { createQueue, type TypedQueue } from './typed';

let connection: Redis;
let keys: Keys;
let queue: TypedQueue<'records'>;

beforeEach(async () => {
  connection = createRedisConnection(TEST_REDIS_URL);
  keys = createKeys(testRedisPrefix('fanout'));
  queue = createQueue({ connection, keys }, 'records');
});

afterEach(async () => {
  await queue.close();
  await deleteRedisPrefix(keys.prefix);
  connection.disconnect();
});

let next = 0;
function record(topic: string, payload = '{"n":1}'): AcceptedRecord {
  next += 1;
  return {
    recordId: `0x${next.toString(16).padStart(64, '0')}`,
    topic,
    subject: 'alice',
    contentHash: `0x${'ab'.repeat(32)}`,
    acceptedAt: 1_700_000_000_000 + next,
    payload,
    relayId: 'relay-1',
    sessionId: 'session-1',
  };
}

const options = { streamMaxLen: 1000, jobOptions: { removeOnComplete: true } };

test('default: one MULTI queues the job and fans each record out to its topic, in order', async () => {
  expect(await watchTopics(connection, keys, ['a', 'b'], 60_000)).toEqual([0, 0]);
  const group = [record('a'), record('b'), record('a', '[1,"x"]')];
  const positions = await addRecordBatch(queue, keys, group, options);
  expect(positions).toEqual([1, 1, 2]);

  const job = await queue.getJob(jobIds.recordBatch(group[0]!.recordId));
  expect(job?.name).toBe('recordBatch');
  expect(job?.data.records).toEqual(group);

  const a = await connection.xrange(keys.topicStream('a'), '-', '+');
  expect(a.map(([id]) => positionOfEntryId(id))).toEqual([1, 2]);
  expect(a.map(([, fields]) => fields)).toEqual([
    [STREAM_FIELD, streamEntry(group[0]!)],
    [STREAM_FIELD, streamEntry(group[2]!)],
  ]);
  expect(JSON.parse(a[1]![1][1]!)).toEqual({
    recordId: group[2]!.recordId,
    subject: 'alice',
    contentHash: group[2]!.contentHash,
    acceptedAt: group[2]!.acceptedAt,
    payload: [1, 'x'],
  });
  expect(await readJobPositions(connection, keys, jobIds.recordBatch(group[0]!.recordId))).toEqual([
    1, 1, 2,
  ]);
});

test('behavior: records of topics nobody watches get positions, and no stream entry', async () => {
  await watchTopics(connection, keys, ['a'], 60_000);
  const group = [record('a'), record('quiet'), record('quiet'), record('a')];
  expect(await addRecordBatch(queue, keys, group, options)).toEqual([1, 1, 2, 2]);
  expect(await connection.xlen(keys.topicStream('a'))).toBe(2);
  expect(await connection.exists(keys.topicStream('quiet'))).toBe(0);
  // Watching returns the position after which every record is in the stream.
  expect(await watchTopics(connection, keys, ['quiet'], 60_000)).toEqual([2]);
  expect(await addRecordBatch(queue, keys, [record('quiet')], options)).toEqual([3]);
  const entries = await connection.xrange(keys.topicStream('quiet'), '-', '+');
  expect(entries.map(([id]) => id)).toEqual(['0-3']);
});

test('behavior: a watch lapses after its TTL (Redis clock), and lapsed topics are dropped', async () => {
  await watchTopics(connection, keys, ['a'], 50);
  await new Promise((resolve) => setTimeout(resolve, 120));
  await addRecordBatch(queue, keys, [record('a')], options);
  expect(await connection.exists(keys.topicStream('a'))).toBe(0);
  await watchTopics(connection, keys, ['b'], 60_000);
  expect(await connection.zrange(keys.watchedTopics, 0, -1)).toEqual(['b']);
});

test('behavior: a counter lost while its stream remains restarts after the stream', async () => {
  await watchTopics(connection, keys, ['a'], 60_000);
  await addRecordBatch(queue, keys, [record('a'), record('a')], options);
  await connection.del(keys.topicPosition('a'));
  expect(await addRecordBatch(queue, keys, [record('a')], options)).toEqual([3]);
});

test('behavior: positions continue across groups (and relays) on the topic counter', async () => {
  await addRecordBatch(queue, keys, [record('a'), record('a')], options);
  const other = createQueue({ connection: connection.duplicate(), keys }, 'records');
  try {
    expect(await addRecordBatch(other, keys, [record('a')], options)).toEqual([3]);
  } finally {
    await other.close();
  }
  expect(entryIdOf(3)).toBe('0-3');
});

test('behavior: several jobs in one MULTI: each its own job, positions in the order given, a retry changes nothing', async () => {
  await watchTopics(connection, keys, ['a'], 60_000);
  const jobs = [[record('a'), record('b')], [], [record('a')], [record('b'), record('a')]];
  expect(await addRecordBatches(queue, keys, jobs, options)).toEqual([[1, 1], [], [2], [2, 3]]);
  for (const records of jobs.filter((job) => job.length > 0)) {
    const job = await queue.getJob(jobIds.recordBatch(records[0]!.recordId));
    expect(job?.data.records).toEqual(records);
  }
  expect((await queue.getJobCounts('waiting')).waiting).toBe(3);
  const a = await connection.xrange(keys.topicStream('a'), '-', '+');
  expect(a.map(([, fields]) => JSON.parse(fields[1]!).recordId)).toEqual(
    [jobs[0]![0]!, jobs[2]![0]!, jobs[3]![1]!].map((r) => r.recordId),
  );
  // The reply lost and the add retried: the same jobs, the same positions, no new entries.
  expect(await addRecordBatches(queue, keys, jobs, options)).toEqual([[1, 1], [], [2], [2, 3]]);
  expect((await queue.getJobCounts('waiting')).waiting).toBe(3);
  expect(await connection.xlen(keys.topicStream('a'))).toBe(3);
  expect(await addRecordBatches(queue, keys, [[], []], options)).toEqual([[], []]);
});

test('error: a command failing inside the MULTI fails the whole add; retried, each job is queued once, in order', async () => {
  const jobs = [[record('a')], [record('a')]];
  // The fan-outs fail inside the MULTI (a counter of the wrong type). EXEC runs the rest (it
  // does not roll back): the add is reported failed, and retried whole.
  await connection.set(keys.topicPosition('a'), 'not a number');
  await expect(addRecordBatches(queue, keys, jobs, options)).rejects.toThrow();
  await connection.del(keys.topicPosition('a'));
  expect(await addRecordBatches(queue, keys, jobs, options)).toEqual([[1], [2]]);
  expect((await queue.getJobCounts('waiting')).waiting).toBe(2);
});

test('behavior: compareEntryIds orders stream ids as Redis does (milliseconds, then sequence)', () => {
  expect(compareEntryIds('0-0', '0-0')).toBe(0);
  expect(compareEntryIds('9-5', '10-0')).toBeLessThan(0);
  expect(compareEntryIds('1700000000000-2', '1700000000000-10')).toBeLessThan(0);
  expect(compareEntryIds('1700000000001-0', '1700000000000-99')).toBeGreaterThan(0);
});

test('behavior: a retried add neither fans out again nor adds a second job', async () => {
  await watchTopics(connection, keys, ['a'], 60_000);
  const group = [record('a'), record('a')];
  expect(await addRecordBatch(queue, keys, group, options)).toEqual([1, 2]);
  expect(await addRecordBatch(queue, keys, group, options)).toEqual([1, 2]);
  expect(await connection.xlen(keys.topicStream('a'))).toBe(2);
  expect((await queue.getJobCounts('waiting')).waiting).toBe(1);
});

test('behavior: the writer forgets positions once stored; unknown jobs have none', async () => {
  const group = [record('a')];
  await addRecordBatch(queue, keys, group, options);
  const jobId = jobIds.recordBatch(group[0]!.recordId);
  expect(await connection.ttl(keys.positions(jobId))).toBeGreaterThan(29 * 24 * 3600);
  await forgetJobPositions(connection, keys, [jobId]);
  expect(await readJobPositions(connection, keys, jobId)).toBeUndefined();
});

test('behavior: streams are trimmed to about streamMaxLen entries', async () => {
  await watchTopics(connection, keys, ['busy'], 60_000);
  for (let i = 0; i < 30; i++)
    await addRecordBatch(
      queue,
      keys,
      Array.from({ length: 100 }, () => record('busy')),
      { ...options, streamMaxLen: 500 },
    );
  const length = await connection.xlen(keys.topicStream('busy'));
  expect(length).toBeGreaterThanOrEqual(500);
  expect(length).toBeLessThan(1000);
  const [[lastId]] = (await connection.xrevrange(
    keys.topicStream('busy'),
    '+',
    '-',
    'COUNT',
    1,
  )) as [[string, string[]]];
  expect(positionOfEntryId(lastId)).toBe(3000);
});

test('behavior: entries built in Redis parse to the record, whatever its subject and payload hold', async () => {
  await watchTopics(connection, keys, ['a'], 60_000);
  const odd = {
    ...record('a', '{"emoji":"😀","quote":"\\"","slash":"a/b","n":-1.5e-7}'),
    subject: 'ünïcode/"quoted"\\back',
    acceptedAt: 9_007_199_254_740_991,
  };
  await addRecordBatch(queue, keys, [odd], options);
  const [[, fields]] = (await connection.xrange(keys.topicStream('a'), '-', '+')) as [
    [string, string[]],
  ];
  expect(JSON.parse(fields[1]!)).toEqual(JSON.parse(streamEntry(odd)));
});
