import {
  addRecordBatch,
  announceAnchoring,
  createKeys,
  createQueue,
  createRedisConnection,
  type Keys,
  type TypedQueue,
  watchTopics,
} from '@streamanchor/bus';
import {
  type AcceptedRecord,
  type BatchMessage,
  type DeliveredRecord,
  parseServerMessage,
  type UnsubscribeReason,
} from '@streamanchor/protocol';
import { createLogger } from '@streamanchor/service-kit';
import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { newRecordId } from '../records';
import {
  createSubscriptionHub,
  type HistoryRecord,
  type ReadHistory,
  type Subscriber,
  type SubscriptionHub,
} from './hub';

const logger = createLogger({ service: 'rtc-relay', level: 'silent' });
let redis: Redis;
let keys: Keys;
let queue: TypedQueue<'records'>;
const hubs: SubscriptionHub[] = [];
const connections: Redis[] = [];

beforeEach(async () => {
  redis = createRedisConnection(TEST_REDIS_URL);
  keys = createKeys(testRedisPrefix('hub'));
  queue = createQueue({ connection: redis, keys }, 'records');
});

afterEach(async () => {
  for (const hub of hubs.splice(0)) await hub.close();
  for (const connection of connections.splice(0)) connection.disconnect();
  await queue.close();
  await deleteRedisPrefix(keys.prefix);
  redis.disconnect();
});

function hub(
  options: { history?: ReadHistory; streamReads?: number; historyWaitMs?: number } = {},
): SubscriptionHub {
  const reader = redis.duplicate();
  const own = redis.duplicate();
  connections.push(reader, own);
  const created = createSubscriptionHub({
    redis: own,
    reader,
    keys,
    logger,
    history: options.history,
    historyWaitMs: options.historyWaitMs,
    readCount: options.streamReads ?? 500,
    blockMs: 200,
  });
  created.start();
  hubs.push(created);
  return created;
}

let counter = 0;
function record(topic: string, n: number): AcceptedRecord {
  counter += 1;
  return {
    recordId: newRecordId(),
    topic,
    subject: 'alice',
    contentHash: `0x${counter.toString(16).padStart(64, '0')}`,
    acceptedAt: 1_700_000_000_000 + counter,
    payload: JSON.stringify({ n }),
    relayId: 'relay-1',
    sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
  };
}

async function publish(topic: string, from: number, count: number, group = 50): Promise<void> {
  for (let start = from; start < from + count; start += group) {
    const records = Array.from({ length: Math.min(group, from + count - start) }, (_, i) =>
      record(topic, start + i),
    );
    await addRecordBatch(queue, keys, records, { streamMaxLen: 100_000, jobOptions: {} });
  }
}

/** A subscriber that keeps what it gets; `full` makes its channel refuse more. */
class FakeSubscriber implements Subscriber {
  readonly id: string;
  recordsMessageLimit = 16 * 1024;
  full = false;
  readonly records = new Map<string, DeliveredRecord[]>();
  readonly batches: BatchMessage[] = [];
  readonly ended: { topic: string; reason: UnsubscribeReason; after: number }[] = [];
  constructor(id: string) {
    this.id = id;
  }
  canTake(): boolean {
    return !this.full;
  }
  deliver(text: string): boolean {
    const message = parseServerMessage(text);
    if (message?.type === 'batch') {
      this.batches.push(message);
      return true;
    }
    if (message?.type !== 'records') throw new Error(`not a records message: ${text.slice(0, 80)}`);
    const list = this.records.get(message.topic) ?? [];
    list.push(...message.records);
    this.records.set(message.topic, list);
    return true;
  }
  subscriptionEnded(topic: string, reason: UnsubscribeReason, after: number): void {
    this.ended.push({ topic, reason, after });
  }
  of(topic: string): DeliveredRecord[] {
    return this.records.get(topic) ?? [];
  }
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A record as history (Postgres) gives it: its payload says it came from there. */
function storedRecord(
  position: number,
  payload: string | null = `{"stored":${position}}`,
  acceptedAt = 1_700_000_000_000,
): HistoryRecord {
  return {
    position,
    recordId: `0x${position.toString(16).padStart(64, '0')}`,
    subject: 'alice',
    contentHash: `0x${'cd'.repeat(32)}`,
    acceptedAt,
    payload,
  };
}

/** A batch's anchor as the indexer announces it; `id` (two hex digits) names the batch. */
function anchorOf(id: string, status: 'included' | 'final', blockNumber = 12) {
  return {
    status,
    confirmations: status === 'final' ? 12 : 1,
    revision: 1,
    batchId: `0x${id.repeat(32)}` as const,
    merkleRoot: `0x${'66'.repeat(32)}` as const,
    recordCount: 40,
    chainId: 31337,
    contract: `0x${'77'.repeat(20)}` as const,
    txHash: `0x${'88'.repeat(32)}` as const,
    blockNumber,
    blockHash: `0x${'99'.repeat(32)}` as const,
    logIndex: 0,
  };
}

/** Announces one anchoring change of the batch `id` holding `ranges` of `topic`. */
async function announce(
  topic: string,
  id: string,
  status: 'included' | 'final',
  ranges: [number, number][],
): Promise<void> {
  const entry = JSON.stringify({ anchor: anchorOf(id, status), positions: ranges });
  expect(await announceAnchoring(redis, keys, [{ topic, entry }])).toBe(1);
}

/** Each batch notice as `<batch id digits>:<status>`, in the order received. */
const notices = (subscriber: FakeSubscriber) =>
  subscriber.batches.map((b) => `${b.anchor.batchId.slice(2, 4)}:${b.anchor.status}`);

const positions = (records: readonly DeliveredRecord[]) => records.map((r) => r.position);
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('subscription hub', () => {
  test('default: subscribers on two relays get every record once, in one order, payloads intact', async () => {
    await publish('demo', 0, 3);
    const [a, b] = [hub(), hub()];
    const alice = new FakeSubscriber('alice');
    const bob = new FakeSubscriber('bob');
    expect(await a.subscribe(alice, [{ topic: 'demo' }])).toEqual([
      { topic: 'demo', after: 3, head: 3 },
    ]);
    a.activate(alice, ['demo']);
    await b.subscribe(bob, [{ topic: 'demo' }]);
    b.activate(bob, ['demo']);
    await publish('demo', 3, 500, 37);
    await publish('other', 0, 5);
    await until(
      () => alice.of('demo').length === 500 && bob.of('demo').length === 500,
      '500 records',
    );
    expect(positions(alice.of('demo'))).toEqual(range(4, 503));
    expect(bob.of('demo')).toEqual(alice.of('demo'));
    expect(alice.of('demo')[0]!.payload).toEqual({ n: 3 });
    expect(alice.of('demo')[499]!.payload).toEqual({ n: 502 });
    expect(alice.records.has('other')).toBe(false);
    expect(a.stats()).toMatchObject({ topics: 1, subscriptions: 1, recordsDelivered: 500 });
  });

  test("behavior: records messages stay within each subscriber's message limit", async () => {
    const a = hub();
    const small = new FakeSubscriber('small');
    small.recordsMessageLimit = 1024;
    const large = new FakeSubscriber('large');
    const sizes: Record<string, number[]> = { small: [], large: [] };
    for (const subscriber of [small, large]) {
      const send = subscriber.deliver.bind(subscriber);
      subscriber.deliver = (text) => {
        sizes[subscriber.id]!.push(Buffer.byteLength(text));
        return send(text);
      };
      await a.subscribe(subscriber, [{ topic: 'demo' }]);
      a.activate(subscriber, ['demo']);
    }
    await publish('demo', 0, 200, 200);
    await until(
      () => small.of('demo').length === 200 && large.of('demo').length === 200,
      '200 each',
    );
    expect(Math.max(...sizes.small!)).toBeLessThanOrEqual(1024);
    expect(sizes.large!.length).toBeLessThan(sizes.small!.length);
    expect(small.of('demo')).toEqual(large.of('demo'));
  });

  test('behavior: nothing is delivered before activate (the session answers subscribed first)', async () => {
    const a = hub();
    const alice = new FakeSubscriber('alice');
    await a.subscribe(alice, [{ topic: 'demo', after: 0 }]);
    await publish('demo', 0, 10);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(alice.of('demo')).toEqual([]);
    a.activate(alice, ['demo']);
    await until(() => alice.of('demo').length === 10, '10 records');
    expect(positions(alice.of('demo'))).toEqual(range(1, 10));
  });

  test('behavior: resuming after a position delivers what was missed, then live, without gaps or repeats', async () => {
    // Another relay's subscribers had the topic watched meanwhile: the stream holds them.
    await watchTopics(redis, keys, ['demo'], 60_000);
    await publish('demo', 0, 1200);
    const a = hub({ streamReads: 100 });
    const alice = new FakeSubscriber('alice');
    expect(await a.subscribe(alice, [{ topic: 'demo', after: 250 }])).toEqual([
      { topic: 'demo', after: 250, head: 1200 },
    ]);
    a.activate(alice, ['demo']);
    const more = publish('demo', 1200, 300, 7);
    await more;
    await until(() => alice.of('demo').length === 1250, '1250 records');
    expect(positions(alice.of('demo'))).toEqual(range(251, 1500));
  });

  test('behavior: a subscriber whose channel is full falls behind alone, then catches up in order', async () => {
    const a = hub({ streamReads: 64 });
    const slow = new FakeSubscriber('slow');
    const fast = new FakeSubscriber('fast');
    for (const subscriber of [slow, fast]) {
      await a.subscribe(subscriber, [{ topic: 'demo' }]);
      a.activate(subscriber, ['demo']);
    }
    await publish('demo', 0, 100);
    await until(() => fast.of('demo').length === 100, 'fast: 100');
    slow.full = true;
    await publish('demo', 100, 400, 25);
    await until(() => fast.of('demo').length === 500, 'fast: 500 while slow is full');
    expect(slow.of('demo').length).toBeLessThan(500);
    slow.full = false;
    await until(() => slow.of('demo').length === 500, 'slow: caught up');
    expect(positions(slow.of('demo'))).toEqual(range(1, 500));
    await publish('demo', 500, 50);
    await until(() => slow.of('demo').length === 550, 'slow: live again');
    expect(positions(slow.of('demo'))).toEqual(range(1, 550));
    expect(a.stats().catchUps).toBeGreaterThanOrEqual(1);
  });

  test('behavior: what the stream was trimmed of comes from history', async () => {
    // Postgres stands in as an in-memory list here: the history read is its own module's
    // test (packages/db); this one checks how the hub stitches it to the stream.
    const stored: HistoryRecord[] = [];
    for (let position = 1; position <= 300; position++) {
      stored.push(storedRecord(position, undefined, 1_700_000_000_000 + position));
    }
    const history: ReadHistory = async (_topic, after, limit) =>
      stored.filter((r) => r.position > after).slice(0, limit);
    await watchTopics(redis, keys, ['demo'], 60_000);
    await publish('demo', 0, 300);
    await redis.xtrim(keys.topicStream('demo'), 'MINID', '0-201');
    const a = hub({ history, streamReads: 64 });
    const alice = new FakeSubscriber('alice');
    await a.subscribe(alice, [{ topic: 'demo', after: 10 }]);
    a.activate(alice, ['demo']);
    await until(() => alice.of('demo').length === 290, '290 records');
    expect(positions(alice.of('demo'))).toEqual(range(11, 300));
    expect(alice.of('demo')[0]!.payload).toEqual({ stored: 11 });
    expect(alice.of('demo')[189]!.payload).toEqual({ stored: 200 });
    expect(alice.of('demo')[190]!.payload).toEqual({ n: 200 });
    expect(a.stats().historyRecords).toBe(190);
  });

  test('error: without history for a trimmed gap, the subscription ends with history_unavailable', async () => {
    await watchTopics(redis, keys, ['demo'], 60_000);
    await publish('demo', 0, 100);
    await redis.xtrim(keys.topicStream('demo'), 'MINID', '0-51');
    // History that stays empty (the records are neither in the stream nor stored) is waited
    // for historyWaitMs, then the subscription ends.
    const a = hub({ history: async () => [], historyWaitMs: 400 });
    const alice = new FakeSubscriber('alice');
    await a.subscribe(alice, [{ topic: 'demo', after: 20 }]);
    a.activate(alice, ['demo']);
    const started = Date.now();
    await until(() => alice.ended.length === 1, 'the end');
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(alice.ended).toEqual([{ topic: 'demo', reason: 'history_unavailable', after: 20 }]);
    expect(alice.of('demo')).toEqual([]);
    expect(a.topicsOf(alice)).toEqual([]);
  });

  test('behavior: records not stored yet are waited for, not skipped', async () => {
    await publish('late', 0, 10);
    let stored = 0;
    const history: ReadHistory = async (_topic, after, limit) =>
      Array.from({ length: Math.max(0, Math.min(limit, stored - after)) }, (_, i) =>
        storedRecord(after + 1 + i),
      );
    const a = hub({ history, historyWaitMs: 10_000 });
    const alice = new FakeSubscriber('alice');
    await a.subscribe(alice, [{ topic: 'late', after: 0 }]);
    a.activate(alice, ['late']);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(alice.of('late')).toEqual([]);
    stored = 10; // the writer caught up
    await until(() => alice.of('late').length === 10, '10 from history');
    expect(alice.ended).toEqual([]);
    expect(positions(alice.of('late'))).toEqual(range(1, 10));
  });

  test('behavior: records published while no relay watched the topic come from history, then live from the stream', async () => {
    await publish('quiet', 0, 40);
    expect(await redis.exists(keys.topicStream('quiet'))).toBe(0);
    const requests: [number, number][] = [];
    const history: ReadHistory = async (_topic, after, limit) => {
      requests.push([after, limit]);
      return Array.from({ length: Math.max(0, Math.min(limit, 40 - after)) }, (_, i) =>
        storedRecord(after + 1 + i),
      );
    };
    const a = hub({ history, streamReads: 16 });
    const alice = new FakeSubscriber('alice');
    expect(await a.subscribe(alice, [{ topic: 'quiet', after: 5 }])).toEqual([
      { topic: 'quiet', after: 5, head: 40 },
    ]);
    a.activate(alice, ['quiet']);
    await until(() => alice.of('quiet').length === 35, 'history: 35');
    await publish('quiet', 40, 10);
    await until(() => alice.of('quiet').length === 45, 'live: 10 more');
    expect(positions(alice.of('quiet'))).toEqual(range(6, 50));
    expect(alice.of('quiet')[34]!.payload).toEqual({ stored: 40 });
    expect(alice.of('quiet')[34]!.pruned).toBeUndefined();
    expect(alice.of('quiet')[35]!.payload).toEqual({ n: 40 });
    expect(requests[0]).toEqual([5, 16]);
  });

  test('behavior: a pruned payload from history comes as payload null, pruned true', async () => {
    await publish('old', 0, 2);
    const history: ReadHistory = async (_topic, after) =>
      [1, 2]
        .filter((position) => position > after)
        .map((position) => storedRecord(position, position === 1 ? null : 'null'));
    const a = hub({ history });
    const alice = new FakeSubscriber('alice');
    await a.subscribe(alice, [{ topic: 'old', after: 0 }]);
    a.activate(alice, ['old']);
    await until(() => alice.of('old').length === 2, '2 records');
    expect(alice.of('old').map((r) => [r.payload, r.pruned])).toEqual([
      [null, true],
      [null, undefined],
    ]);
  });

  test('behavior: a gap in the stream (a watch that lapsed) is filled from history for subscribers in step', async () => {
    const stored = new Map<number, HistoryRecord>();
    const history: ReadHistory = async (_topic, after, limit) =>
      [...stored.values()].filter((r) => r.position > after).slice(0, limit);
    const a = hub({ history });
    const alice = new FakeSubscriber('alice');
    await a.subscribe(alice, [{ topic: 'demo' }]);
    a.activate(alice, ['demo']);
    await publish('demo', 0, 5);
    await until(() => alice.of('demo').length === 5, '5 live');
    // The watch lapses (as when Redis was away past its TTL): 5 records skip the stream.
    await redis.zrem(keys.watchedTopics, 'demo');
    await publish('demo', 5, 5);
    for (let position = 6; position <= 10; position++) stored.set(position, storedRecord(position));
    await watchTopics(redis, keys, ['demo'], 60_000);
    await publish('demo', 10, 5);
    await until(() => alice.of('demo').length === 15, '15 in all');
    expect(positions(alice.of('demo'))).toEqual(range(1, 15));
    expect(alice.of('demo')[5]!.payload).toEqual({ stored: 6 });
  });

  test('behavior: anchoring changes of a watched topic reach its subscribers whose records they may hold', async () => {
    const a = hub();
    const early = new FakeSubscriber('early');
    const late = new FakeSubscriber('late');
    const pending = new FakeSubscriber('pending');
    await a.subscribe(early, [{ topic: 'demo', after: 0 }]);
    a.activate(early, ['demo']);
    await publish('demo', 0, 30);
    await until(() => early.of('demo').length === 30, '30 records');
    expect(await a.subscribe(late, [{ topic: 'demo' }])).toEqual([
      { topic: 'demo', after: 30, head: 30 },
    ]);
    a.activate(late, ['demo']);
    await a.subscribe(pending, [{ topic: 'demo', after: 0 }]); // not activated
    const anchor = anchorOf('55', 'included');
    const entry = JSON.stringify({
      anchor,
      positions: [
        [1, 20],
        [25, 30],
      ],
    });
    expect(
      await announceAnchoring(redis, keys, [
        { topic: 'demo', entry },
        { topic: 'unwatched', entry },
      ]),
    ).toBe(1);
    await until(() => early.batches.length === 1, 'the batch notice');
    expect(early.batches[0]).toEqual({
      type: 'batch',
      topic: 'demo',
      anchor,
      positions: [
        [1, 20],
        [25, 30],
      ],
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(late.batches).toEqual([]);
    expect(pending.batches).toEqual([]);
    expect(await redis.exists(keys.topicAnchoring('unwatched'))).toBe(0);
    expect(a.stats().batchNotices).toBe(1);
  });

  test('behavior: a subscriber resuming from a past position gets the kept anchoring changes of its records after them, then live ones', async () => {
    const a = hub();
    const watcher = new FakeSubscriber('watcher'); // keeps the topic watched meanwhile
    await a.subscribe(watcher, [{ topic: 'demo' }]);
    a.activate(watcher, ['demo']);
    await publish('demo', 0, 30);
    await until(() => watcher.of('demo').length === 30, '30 records');
    await announce('demo', '11', 'included', [[1, 10]]);
    await announce('demo', '22', 'included', [[11, 30]]);
    await announce('demo', '11', 'final', [[1, 10]]);
    await until(() => watcher.batches.length === 3, 'three notices');

    const resumed = new FakeSubscriber('resumed');
    await a.subscribe(resumed, [{ topic: 'demo', after: 5 }]);
    let firstNoticeAfter = -1;
    const deliver = resumed.deliver.bind(resumed);
    resumed.deliver = (text) => {
      if (firstNoticeAfter < 0 && text.startsWith('{"type":"batch"'))
        firstNoticeAfter = resumed.of('demo').length;
      return deliver(text);
    };
    a.activate(resumed, ['demo']);
    await until(() => resumed.batches.length === 3, 'the replayed notices');
    // Records first, then the changes in the order they happened: the last one stands.
    expect(positions(resumed.of('demo'))).toEqual(range(6, 30));
    expect(firstNoticeAfter).toBe(25);
    expect(notices(resumed)).toEqual(['11:included', '22:included', '11:final']);
    await announce('demo', '22', 'final', [[11, 30]]);
    await until(() => resumed.batches.length === 4, 'the live notice');
    expect(notices(resumed)[3]).toBe('22:final');

    // Resuming at the head with anchoringAfter: changes of records it already holds.
    const caughtUp = new FakeSubscriber('caught-up');
    await a.subscribe(caughtUp, [{ topic: 'demo', after: 30, anchoringAfter: 10 }]);
    a.activate(caughtUp, ['demo']);
    await until(() => caughtUp.batches.length === 2, 'the notices of batch 22');
    expect(notices(caughtUp)).toEqual(['22:included', '22:final']);
    expect(caughtUp.of('demo')).toEqual([]);
  });

  test('behavior: an anchoring change that met a full channel comes once it drained, after the records', async () => {
    const a = hub();
    const slow = new FakeSubscriber('slow');
    await a.subscribe(slow, [{ topic: 'demo' }]);
    a.activate(slow, ['demo']);
    await publish('demo', 0, 10);
    await until(() => slow.of('demo').length === 10, '10 records');
    slow.full = true;
    await announce('demo', '33', 'included', [[1, 10]]);
    await publish('demo', 10, 10);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(slow.batches).toEqual([]);
    slow.full = false;
    await until(() => slow.of('demo').length === 20, '20 records');
    await until(() => slow.batches.length === 1, 'the held notice');
    expect(notices(slow)).toEqual(['33:included']);
    await announce('demo', '44', 'included', [[11, 20]]);
    await until(() => slow.batches.length === 2, 'the next notice, live');
    expect(notices(slow)).toEqual(['33:included', '44:included']);
  });

  test('behavior: a subscribe counts at once, and an unsubscribe right behind it (before it was answered) sticks', async () => {
    const a = hub();
    const alice = new FakeSubscriber('alice');
    const subscribing = a.subscribe(alice, [{ topic: 'demo' }, { topic: 'other' }]);
    // The session checks its limit against topicsOf before the answer: both count already.
    expect(a.topicsOf(alice).sort()).toEqual(['demo', 'other']);
    a.unsubscribe(alice, ['demo', 'other']);
    expect(a.topicsOf(alice)).toEqual([]);
    expect(await subscribing).toEqual([
      { topic: 'demo', after: 0, head: 0 },
      { topic: 'other', after: 0, head: 0 },
    ]);
    expect(a.stats()).toMatchObject({ topics: 0, subscriptions: 0 });
    await publish('demo', 0, 3);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(alice.of('demo')).toEqual([]);
  });

  test('behavior: unsubscribe and drop stop delivery and release the topic', async () => {
    const a = hub();
    const alice = new FakeSubscriber('alice');
    await a.subscribe(alice, [{ topic: 'demo' }, { topic: 'other' }]);
    a.activate(alice, ['demo', 'other']);
    expect(a.topicsOf(alice).sort()).toEqual(['demo', 'other']);
    a.unsubscribe(alice, ['demo']);
    await publish('demo', 0, 5);
    await publish('other', 0, 5);
    await until(() => alice.of('other').length === 5, 'other: 5');
    expect(alice.of('demo')).toEqual([]);
    a.drop(alice);
    expect(a.stats()).toMatchObject({ topics: 0, subscriptions: 0 });
  });
});
