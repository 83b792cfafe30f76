/**
 * Subscriptions end to end (docs/protocol.md §5.9): relays in this process sharing one Redis
 * prefix (as a deployment's relays share Redis), WebRTC clients in child processes
 * (test/support/client-process.ts), a Worker on the real `records` queue standing in for
 * chain-writer. Redis is real; nothing is mocked.
 */

import type {
  NackMessage,
  RecordsMessage,
  ServerMessage,
  SubscribedMessage,
  UnsubscribedMessage,
} from '@streamanchor/protocol';
import { testRedisPrefix } from '@streamanchor/testing';
import { afterEach, describe, expect, test } from 'vitest';
import { ClientProcess } from './support/client';
import { startTestRelay, type TestRelay } from './support/relay';

const V2 = { protocol: 'streamanchor.v2' };
const relays: TestRelay[] = [];
const clients: ClientProcess[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()));
  for (const relay of relays.splice(0)) await relay.close();
});

/** `count` relays on one Redis prefix, the first with the records writer stand-in. */
async function startRelays(count: number, env: Record<string, string> = {}): Promise<TestRelay[]> {
  const REDIS_PREFIX = testRedisPrefix('subs');
  const started: TestRelay[] = [];
  for (let i = 0; i < count; i++) {
    const relay = await startTestRelay({ REDIS_PREFIX, ...env });
    relays.push(relay);
    started.push(relay);
  }
  await started[0]!.startWriter();
  return started;
}

async function client(): Promise<ClientProcess> {
  const spawned = await ClientProcess.spawn();
  clients.push(spawned);
  return spawned;
}

const answerTo = (id: string) => (m: ServerMessage) =>
  (m.type === 'subscribed' || m.type === 'unsubscribed' || m.type === 'nack') &&
  'id' in m &&
  m.id === id;

async function subscribe(
  subscriber: ClientProcess,
  id: string,
  topics: { topic: string; after?: number }[],
): Promise<ServerMessage> {
  subscriber.send(JSON.stringify({ type: 'subscribe', id, topics }));
  return subscriber.message(answerTo(id));
}

/** The records of `topic` the client got so far, in arrival order. */
function received(subscriber: ClientProcess, topic = 'demo') {
  return subscriber
    .messages()
    .filter((m): m is RecordsMessage => m.type === 'records' && m.topic === topic)
    .flatMap((m) => m.records);
}

async function receivedCount(subscriber: ClientProcess, count: number, topic = 'demo') {
  await expect
    .poll(() => received(subscriber, topic).length, { timeout: 20_000, interval: 50 })
    .toBe(count);
  return received(subscriber, topic);
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('subscriptions', () => {
  test('default: records published on one relay reach subscribers on it and on another, each once, in ack order', async () => {
    const [a, b] = await startRelays(2);
    const [publisher, local, remote] = await Promise.all([client(), client(), client()]);
    await a!.connect(publisher, { subject: 'pub' }, V2);
    const { hello } = await a!.connect(
      local,
      { subject: 'sub-a', topics: [], subscribeTopics: ['demo'] },
      V2,
    );
    expect(hello).toMatchObject({ topics: [], subscribe: ['demo'], maxSubscriptions: 64 });
    await b!.connect(remote, { subject: 'sub-b', topics: [], subscribeTopics: ['*'] }, V2);

    expect(await subscribe(local, 's1', [{ topic: 'demo' }])).toEqual({
      type: 'subscribed',
      id: 's1',
      topics: [{ topic: 'demo', after: 0, head: 0 }],
    });
    expect(await subscribe(remote, 's1', [{ topic: 'demo' }])).toMatchObject({
      type: 'subscribed',
    });

    const summary = await publisher.publishMany({
      count: 300,
      payloadBytes: 120,
      topic: 'demo',
      idPrefix: 'p',
      listAcks: true,
    });
    expect(summary.acks).toBe(300);
    const acked = summary.acked!.map((ack) => ack.recordId);

    for (const subscriber of [local, remote]) {
      const records = await receivedCount(subscriber, 300);
      expect(records.map((r) => r.position)).toEqual(range(1, 300));
      expect(records.map((r) => r.recordId)).toEqual(acked);
      expect(records[0]).toEqual({
        position: 1,
        recordId: acked[0],
        subject: 'pub',
        contentHash: summary.acked![0]!.contentHash,
        acceptedAt: expect.any(Number),
        payload: { n: 0, fill: 'x'.repeat(100) },
      });
    }
    // Nothing more arrives (each record exactly once).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received(local).length).toBe(300);
    expect(received(remote).length).toBe(300);
    expect(a!.app.stats().subscriptions).toMatchObject({ topics: 1, subscriptions: 1 });
  });

  test('behavior: a subscriber that reconnects with its last position misses nothing and gets nothing twice', async () => {
    const [relay] = await startRelays(1);
    const [publisher, first] = await Promise.all([client(), client()]);
    await relay!.connect(publisher, { subject: 'pub' }, V2);
    await relay!.connect(first, { topics: [], subscribeTopics: ['demo'] }, V2);
    await subscribe(first, 's1', [{ topic: 'demo', after: 0 }]);
    await publisher.publishMany({ count: 150, payloadBytes: 50, topic: 'demo', idPrefix: 'a' });
    const before = await receivedCount(first, 150);
    const last = before[before.length - 1]!.position;
    expect(last).toBe(150);
    await first.stop();

    // Published while the subscriber was away.
    const away = await publisher.publishMany({
      count: 100,
      payloadBytes: 50,
      topic: 'demo',
      idPrefix: 'b',
      listAcks: true,
    });
    const again = await client();
    await relay!.connect(again, { topics: [], subscribeTopics: ['demo'] }, V2);
    expect(await subscribe(again, 's2', [{ topic: 'demo', after: last }])).toEqual({
      type: 'subscribed',
      id: 's2',
      topics: [{ topic: 'demo', after: 150, head: 250 }],
    });
    const live = publisher.publishMany({
      count: 50,
      payloadBytes: 50,
      topic: 'demo',
      idPrefix: 'c',
    });
    const after = await receivedCount(again, 150);
    await live;
    expect(after.map((r) => r.position)).toEqual(range(151, 300));
    expect(after.slice(0, 100).map((r) => r.recordId)).toEqual(away.acked!.map((a) => a.recordId));
  });

  test('behavior: a subscriber that stops reading falls behind alone: the publisher is acked, the other subscriber served, and it catches up once it reads', async () => {
    const [relay] = await startRelays(1, { MAX_BUFFERED_BYTES: String(256 * 1024) });
    const [publisher, frozen, other] = await Promise.all([client(), client(), client()]);
    await relay!.connect(publisher, { subject: 'pub' }, V2);
    await relay!.connect(frozen, { subject: 'slow', topics: [], subscribeTopics: ['demo'] }, V2);
    await relay!.connect(other, { subject: 'fast', topics: [], subscribeTopics: ['demo'] }, V2);
    await subscribe(frozen, 's1', [{ topic: 'demo' }]);
    await subscribe(other, 's1', [{ topic: 'demo' }]);

    frozen.freeze(true);
    try {
      // ~1.6 MB of records: many times what the frozen client's channel may hold unsent
      // (paced within the publish quota).
      const summary = await publisher.publishMany({
        count: 2000,
        payloadBytes: 800,
        topic: 'demo',
        idPrefix: 'p',
        ratePerSecond: 450,
      });
      expect(summary.acks).toBe(2000);
      const records = await receivedCount(other, 2000);
      expect(records.map((r) => r.position)).toEqual(range(1, 2000));
      expect(relay!.app.stats().subscriptions.catchUps).toBeGreaterThanOrEqual(1);
    } finally {
      frozen.freeze(false);
    }
    const caughtUp = await receivedCount(frozen, 2000);
    expect(caughtUp.map((r) => r.position)).toEqual(range(1, 2000));
    expect(relay!.app.stats().sessions).toBe(3);
  });

  test('error: topics not granted, too many topics, and v1 sessions are refused with their codes; unsubscribe stops the records', async () => {
    const [relay] = await startRelays(1, { MAX_SUBSCRIPTIONS: '2' });
    const [publisher, subscriber, old] = await Promise.all([client(), client(), client()]);
    await relay!.connect(publisher, { subject: 'pub', topics: ['demo', 'chat'] }, V2);
    await relay!.connect(
      subscriber,
      { topics: ['demo'], subscribeTopics: ['demo', 'chat', 'x'] },
      V2,
    );
    await relay!.connect(old, { subscribeTopics: ['demo'] });

    const notGranted = (await subscribe(subscriber, 'n1', [
      { topic: 'demo' },
      { topic: 'admin' },
    ])) as NackMessage;
    expect(notGranted).toMatchObject({ type: 'nack', id: 'n1', code: 'topic_not_allowed' });
    expect(notGranted.message).toContain('topic admin is not granted for subscribing');

    const twice = (await subscribe(subscriber, 'n2', [
      { topic: 'demo' },
      { topic: 'demo' },
    ])) as NackMessage;
    expect(twice).toMatchObject({ type: 'nack', id: 'n2', code: 'invalid_message' });

    expect(await subscribe(subscriber, 's1', [{ topic: 'demo' }, { topic: 'chat' }])).toMatchObject(
      {
        type: 'subscribed',
      },
    );
    const tooMany = (await subscribe(subscriber, 'n3', [{ topic: 'x' }])) as NackMessage;
    expect(tooMany).toMatchObject({ type: 'nack', id: 'n3', code: 'too_many_subscriptions' });
    expect(tooMany.message).toContain('3 topics; at most 2');

    const v1 = (await subscribe(old, 'n4', [{ topic: 'demo' }])) as NackMessage;
    expect(v1).toMatchObject({ type: 'nack', id: 'n4', code: 'invalid_message' });
    expect(v1.message).toContain('subscribe needs streamanchor.v2');

    subscriber.send(JSON.stringify({ type: 'unsubscribe', id: 'u1', topics: ['chat'] }));
    expect((await subscriber.message(answerTo('u1'))) as UnsubscribedMessage).toEqual({
      type: 'unsubscribed',
      id: 'u1',
      topics: ['chat'],
      reason: 'requested',
    });
    await publisher.publishMany({ count: 5, payloadBytes: 20, topic: 'chat', idPrefix: 'c' });
    await publisher.publishMany({ count: 5, payloadBytes: 20, topic: 'demo', idPrefix: 'd' });
    await receivedCount(subscriber, 5, 'demo');
    expect(received(subscriber, 'chat')).toEqual([]);
    // The session still publishes as before.
    expect(
      (await subscriber.publishMany({ count: 3, payloadBytes: 20, topic: 'demo', idPrefix: 'q' }))
        .acks,
    ).toBe(3);
    const subscribed = subscriber
      .messages()
      .filter((m) => m.type === 'subscribed') as SubscribedMessage[];
    expect(subscribed).toHaveLength(1);
  });
});
