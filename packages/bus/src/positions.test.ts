import type { AcceptedRecord } from '@streamanchor/protocol';
import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { createRedisConnection } from './connection';
import { addRecordBatch } from './fanout';
import { createKeys, type Keys } from './keys';
import { mgetJobPositions } from './positions';
import { jobIds } from './queues';
import { createQueue, type TypedQueue } from './typed';

let connection: Redis;
let keys: Keys;
let queue: TypedQueue<'records'>;

beforeEach(async () => {
  connection = createRedisConnection(TEST_REDIS_URL);
  keys = createKeys(testRedisPrefix('positions'));
  queue = createQueue({ connection, keys }, 'records');
});

afterEach(async () => {
  await queue.close();
  await deleteRedisPrefix(keys.prefix);
  connection.disconnect();
});

let next = 0;
function record(topic: string): AcceptedRecord {
  next += 1;
  return {
    recordId: `0x${next.toString(16).padStart(64, '0')}`,
    topic,
    subject: 'alice',
    contentHash: `0x${'ab'.repeat(32)}`,
    acceptedAt: 1_700_000_000_000 + next,
    payload: '{}',
    relayId: 'relay-1',
    sessionId: 'session-1',
  };
}

const options = { streamMaxLen: 1000, jobOptions: { removeOnComplete: true } };

test('default: one MGET gives each job its positions, in the order asked, undefined for a job without', async () => {
  const first = [record('a'), record('b'), record('a')];
  const second = [record('a')];
  await addRecordBatch(queue, keys, first, options);
  await addRecordBatch(queue, keys, second, options);
  const ids = [first, second].map((group) => jobIds.recordBatch(group[0]!.recordId));
  expect(await mgetJobPositions(connection, keys, [ids[1]!, 'plain-add', ids[0]!])).toEqual([
    [3],
    undefined,
    [1, 1, 2],
  ]);
});

test('behavior: an empty list of jobs has no positions', async () => {
  expect(await mgetJobPositions(connection, keys, [])).toEqual([]);
});
