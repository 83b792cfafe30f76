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

/** The answers (subscribed, unsubscribed, nack) the client got, in arrival order. */
function answers(client: ClientProcess): ServerMessage[] {
  return client
    .messages()
    .filter((m) => m.type === 'subscribed' || m.type === 'unsubscribed' || m.type === 'nack');
}

/** What the relay answers each message of a hostile cycle (MAX_SUBSCRIPTIONS 2). */
type Expected = { id: string; type: 'subscribed' | 'unsubscribed' } | { id: string; code: string };

/**
 * One cycle of the subscribe flood: subscribe to the two topics it may have, then a third
 * (`too_many_subscriptions`), one not granted (`topic_not_allowed`), a malformed subscribe
 * (`invalid_message`: `after` below 0), and unsubscribe from both.
 */
function hostileCycle(i: number): { messages: string[]; expected: Expected[] } {
  const cycle: [Record<string, unknown>, Expected][] = [
    [
      { type: 'subscribe', id: `a${i}`, topics: [{ topic: 'demo' }, { topic: 'chat' }] },
      { id: `a${i}`, type: 'subscribed' },
    ],
    [
      { type: 'subscribe', id: `b${i}`, topics: [{ topic: 'x' }] },
      { id: `b${i}`, code: 'too_many_subscriptions' },
    ],
    [
      { type: 'subscribe', id: `c${i}`, topics: [{ topic: 'admin' }] },
      { id: `c${i}`, code: 'topic_not_allowed' },
    ],
    [
      { type: 'subscribe', id: `d${i}`, topics: [{ topic: 'demo', after: -1 }] },
      { id: `d${i}`, code: 'invalid_message' },
    ],
    [
      { type: 'unsubscribe', id: `e${i}`, topics: ['demo', 'chat'] },
      { id: `e${i}`, type: 'unsubscribed' },
    ],
  ];
  return {
    messages: cycle.map(([message]) => JSON.stringify(message)),
    expected: cycle.map(([, expected]) => expected),
  };
}

/** An answer reduced to what `Expected` says of it. */
const gist = (m: ServerMessage) =>
  m.type === 'nack' ? { id: m.id, code: m.code } : { id: 'id' in m ? m.id : null, type: m.type };

describe('subscriptions under a hostile session', () => {
  test('error: a session flooding subscribe and unsubscribe gets too_many_subscriptions, topic_not_allowed, invalid_message, then rate_limited and is closed; an honest subscriber on the relay gets every record once, in order', async () => {
    const [relay] = await startRelays(1, { MAX_SUBSCRIPTIONS: '2' });
    const [publisher, honest, hostile, greedy] = await Promise.all([
      client(),
      client(),
      client(),
      client(),
    ]);
    await relay!.connect(publisher, { subject: 'pub' }, V2);
    await relay!.connect(honest, { subject: 'honest', topics: [], subscribeTopics: ['demo'] }, V2);
    const grants = { topics: [], subscribeTopics: ['demo', 'chat', 'x'] };
    await relay!.connect(hostile, { subject: 'hostile', ...grants }, V2);
    await relay!.connect(greedy, { subject: 'greedy', ...grants }, V2);
    await subscribe(honest, 's1', [{ topic: 'demo', after: 0 }]);
    const publishing = publisher.publishMany({
      count: 300,
      payloadBytes: 60,
      topic: 'demo',
      idPrefix: 'p',
      listAcks: true,
      ratePerSecond: 300,
    });

    // 1. Within the refusal limit (200 refused messages a second): 20 cycles, 60 refusals,
    // sent at once; each message gets its own answer, in order.
    const first = Array.from({ length: 20 }, (_, i) => hostileCycle(i));
    for (const cycle of first) for (const message of cycle.messages) hostile.send(message);
    const expected = first.flatMap((cycle) => cycle.expected);
    await expect.poll(() => answers(hostile).length, { timeout: 20_000 }).toBe(expected.length);
    // Soft: the rest still runs when this fails (the honest subscriber's part above all).
    expect.soft(answers(hostile).map(gist)).toEqual(expected);
    // Its last message unsubscribed it from everything: it holds no subscription and gets
    // no records after that answer (§5.9), while the publisher goes on.
    const unsubscribedAt = hostile.messages().findIndex((m) => 'id' in m && m.id === 'e19');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect.soft(relay!.app.stats().subscriptions).toMatchObject({ topics: 1, subscriptions: 1 });
    expect
      .soft(
        hostile
          .messages()
          .slice(unsubscribedAt)
          .filter((m) => m.type === 'records'),
      )
      .toEqual([]);

    // 2. Past it: the same cycles as fast as the channel takes them. The answers go on in
    // order until the 201st refusal within a second, then one last rate_limited nack with
    // id null, and the session is closed (what it sends later is not read).
    const flood = Array.from({ length: 100 }, (_, i) => hostileCycle(20 + i));
    for (const cycle of flood) for (const message of cycle.messages) hostile.send(message);
    const closing = (await hostile.message(
      (m) => m.type === 'nack' && m.id === null,
      20_000,
    )) as NackMessage;
    expect(closing).toMatchObject({ type: 'nack', id: null, code: 'rate_limited' });
    expect(closing.retryAfterMs).toBeGreaterThan(0);
    expect(closing.message).toContain('more than 200 messages refused within a second');
    await hostile.waitFor((e) => e.event === 'closed', 10_000);
    const flooded = answers(hostile).slice(expected.length, -1).map(gist);
    const floodExpected = flood.flatMap((cycle) => cycle.expected);
    expect.soft(flooded).toEqual(floodExpected.slice(0, flooded.length));
    // It was closed by a refusal, before the end of the flood.
    expect(flooded.at(-1)).toHaveProperty('code');
    expect(flooded.length).toBeLessThan(floodExpected.length);

    // 3. Only subscribe and unsubscribe, all valid, 2,000 at once: each takes a token of the
    // publish quota (burst 1,000, 500/s), so past it they are nacked rate_limited (each with
    // its own id and a retryAfterMs), and those refusals close the session too.
    for (let i = 0; i < 2000; i++) {
      greedy.send(
        JSON.stringify(
          i % 2 === 0
            ? { type: 'subscribe', id: `g${i}`, topics: [{ topic: 'demo' }] }
            : { type: 'unsubscribe', id: `g${i}`, topics: ['demo'] },
        ),
      );
    }
    await greedy.message((m) => m.type === 'nack' && m.id === null, 20_000);
    const greedyAnswers = answers(greedy);
    // Message i's answer: what it asked for, or rate_limited once the bucket is empty (a
    // token refilled meanwhile serves one again); the burst at least was served.
    const byMessage = greedyAnswers
      .slice(0, -1)
      .map((m, i) =>
        m.type === 'nack' && m.code === 'rate_limited' && m.id === `g${i}` && m.retryAfterMs! > 0
          ? 'rate_limited'
          : JSON.stringify(gist(m)) ===
              JSON.stringify({ id: `g${i}`, type: i % 2 === 0 ? 'subscribed' : 'unsubscribed' })
            ? 'served'
            : `unexpected: ${JSON.stringify(m)}`,
      );
    expect(byMessage.slice(0, 1000)).toEqual(Array(1000).fill('served'));
    expect(byMessage.filter((a) => a !== 'served' && a !== 'rate_limited')).toEqual([]);
    expect(byMessage.filter((a) => a === 'rate_limited').length).toBeGreaterThanOrEqual(201);
    expect(byMessage.length).toBeLessThan(2000);
    expect(greedyAnswers.at(-1)).toMatchObject({ type: 'nack', id: null, code: 'rate_limited' });

    // The honest subscriber got every record, once, in ack order; the publisher every ack.
    const summary = await publishing;
    expect(summary).toMatchObject({ acks: 300, nacks: 0 });
    const records = await receivedCount(honest, 300);
    expect(records.map((r) => r.position)).toEqual(range(1, 300));
    expect(records.map((r) => r.recordId)).toEqual(summary.acked!.map((ack) => ack.recordId));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received(honest).length).toBe(300);
    expect(honest.messages().filter((m) => m.type === 'unsubscribed')).toEqual([]);
  });
});
