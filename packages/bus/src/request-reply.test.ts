import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import type { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createRedisConnection } from './connection';
import { createKeys } from './keys';
import { jobIds } from './queues';
import { RemoteError, RequestTimeoutError, requestReply } from './request-reply';
import {
  type BusDeps,
  createQueue,
  createQueueEvents,
  createWorker,
  type TypedQueue,
  type TypedWorker,
} from './typed';

const offer = (sessionId: string) => ({
  sessionId,
  offerSdp: 'v=0',
  subject: 'alice',
  topics: ['demo'],
  tokenExpiresAt: Date.now() + 60_000,
  deadline: Date.now() + 5_000,
});

let connection: Redis;
let bus: BusDeps;
let queue: TypedQueue<'relayControl'>;
let events: QueueEvents;
let worker: TypedWorker<'relayControl'> | undefined;

beforeEach(async () => {
  connection = createRedisConnection(TEST_REDIS_URL);
  bus = { connection, keys: createKeys(testRedisPrefix('rr')) };
  queue = createQueue(bus, 'relayControl', 'relay-1');
  events = createQueueEvents(bus, 'relayControl', 'relay-1');
  await events.waitUntilReady();
});

afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await events.close();
  await queue.close();
  await deleteRedisPrefix(bus.keys.prefix);
  connection.disconnect();
});

describe('requestReply', () => {
  test('default: returns the worker result', async () => {
    worker = createWorker(bus, 'relayControl', 'relay-1', async (job) => {
      if (job.name !== 'createSession') throw new Error('unexpected job');
      return { answerSdp: `answer for ${job.data.sessionId}` };
    });
    const result = await requestReply(queue, events, 'createSession', offer('s1'), {
      jobId: jobIds.createSession('s1'),
      timeoutMs: 5_000,
    });
    expect(result).toEqual({ answerSdp: 'answer for s1' });
  });

  test('behavior: a finished job keeps neither its data (the offer) nor its result (the answer)', async () => {
    worker = createWorker(bus, 'relayControl', 'relay-1', async (job) => {
      if (job.data.sessionId === 'refused') throw new RemoteError('invalid_sdp', 'no');
      return { answerSdp: 'v=0 answer-sdp' };
    });
    const big = { ...offer('kept'), offerSdp: `v=0\r\n${'a=x\r\n'.repeat(5000)}` };
    await requestReply(queue, events, 'createSession', big, {
      jobId: jobIds.createSession('kept'),
      timeoutMs: 5_000,
    });
    await expect(
      requestReply(
        queue,
        events,
        'createSession',
        { ...big, sessionId: 'refused' },
        {
          jobId: jobIds.createSession('refused'),
          timeoutMs: 5_000,
        },
      ),
    ).rejects.toBeInstanceOf(RemoteError);
    for (const id of ['kept', 'refused']) {
      const jobKey = queue.toKey(jobIds.createSession(id));
      // The job is still there (for late "already finished?" checks), emptied.
      expect(await connection.exists(jobKey)).toBe(1);
      expect(await connection.hget(jobKey, 'data')).toBe('{}');
      expect(String(await connection.hget(jobKey, 'returnvalue'))).not.toMatch(/answer-sdp/);
      expect(JSON.stringify(await connection.hgetall(jobKey))).not.toContain('a=x');
    }
  });

  test('behavior: works on any queue of the map (indexerLookup, a single queue)', async () => {
    const lookupQueue = createQueue(bus, 'indexerLookup');
    const lookupEvents = createQueueEvents(bus, 'indexerLookup');
    const lookupWorker = createWorker(bus, 'indexerLookup', undefined, async (job) => {
      expect(job.name).toBe('lookupReceipt');
      const { recordId } = job.data as { recordId: string };
      return { state: 'pending' as const, subject: `owner of ${recordId.slice(0, 6)}` };
    });
    try {
      await lookupEvents.waitUntilReady();
      const recordId = `0x${'ab'.repeat(32)}`;
      const jobId = jobIds.lookupReceipt(recordId, 'n1');
      const result = await requestReply(
        lookupQueue,
        lookupEvents,
        'lookupReceipt',
        { recordId: recordId as `0x${string}` },
        {
          jobId,
          timeoutMs: 5_000,
        },
      );
      expect(result).toEqual({ state: 'pending', subject: 'owner of 0xabab' });
      expect(jobId).toBe(`lookup-${recordId}-n1`);
      expect(jobIds.lookupReceipt(recordId, 'n2')).not.toBe(jobId);
    } finally {
      await lookupWorker.close();
      await lookupEvents.close();
      await lookupQueue.close();
    }
  });

  test('error: a RemoteError crosses Redis with its code', async () => {
    worker = createWorker(bus, 'relayControl', 'relay-1', async () => {
      throw new RemoteError('invalid_sdp', 'no m=application line');
    });
    const error = await requestReply(queue, events, 'createSession', offer('s2'), {
      jobId: jobIds.createSession('s2'),
      timeoutMs: 5_000,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: 'invalid_sdp', detail: 'no m=application line' });
  });

  test('error: no worker → RequestTimeoutError and the job is removed', async () => {
    const error = await requestReply(queue, events, 'createSession', offer('s3'), {
      jobId: jobIds.createSession('s3'),
      timeoutMs: 300,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(await queue.getJob(jobIds.createSession('s3'))).toBeUndefined();
  });
});
