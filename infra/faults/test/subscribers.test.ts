/**
 * Subscribers under faults (docs/protocol.md §5.9, §11): the whole stack (every service its
 * own process), publishers streaming through the gateway, subscribers (node-datachannel
 * clients in their own processes) on the relay each scenario chooses; kill -9 of that relay,
 * or of Redis. A subscriber that lost its session resumes in a new one with its last
 * position; every subscriber must end with positions 1, 2, 3… each once, in order, holding
 * every acked record with the fields of its ack. Short plan inside `pnpm test`, long with
 * FAULTS=long (src/plans.ts).
 */
import { type PrivateRedis, startPrivateRedis } from '@streamanchor/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type FaultStack, startFaultStack } from '../src/harness';
import { plan } from '../src/plans';
import type { Publisher } from '../src/publisher-client';
import {
  checkDelivery,
  openRelayDoor,
  type RelayDoor,
  Subscriber,
  waitUntil,
} from '../src/subscribers';

const print = (text: string) => void process.stdout.write(`${text}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const p = plan.subscribers;
/** The subject of every session the stack's token opens (the publishers'). */
const PUBLISHER_SUBJECT = 'demo';

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  cleanups = [];
});

async function stack(options: Parameters<typeof startFaultStack>[0]): Promise<FaultStack> {
  const h = await startFaultStack(options);
  cleanups.push(() => h.close());
  return h;
}

function door(h: FaultStack): RelayDoor {
  const opened = openRelayDoor(h.stack);
  cleanups.push(() => opened.close());
  return opened;
}

async function subscribers(relayDoor: RelayDoor, relayId: string): Promise<Subscriber[]> {
  const started = await Promise.all(
    Array.from({ length: p.subscribers }, (_, i) =>
      Subscriber.start(`sub-${i}`, relayDoor, relayId),
    ),
  );
  cleanups.push(async () => void (await Promise.all(started.map((s) => s.stop()))));
  return started;
}

/** Waits until each publisher got `count` more acks than `from` (its acks then). */
async function moreAcks(publishers: Publisher[], count: number, what: string): Promise<void> {
  const from = publishers.map((publisher) => publisher.acked.size);
  await Promise.all(
    publishers.map((publisher, i) =>
      publisher.until(what, () => publisher.acked.size >= from[i]! + count, 90_000),
    ),
  );
}

/**
 * Stops the publishers, waits until every subscriber got every acked record (or 60 s), then
 * a little longer (a duplicate would come now), and checks each one's delivery.
 */
async function checkSubscribers(
  publishers: Publisher[],
  all: Subscriber[],
  unackedAllowed: (totals: { nacked: number; unanswered: number }[]) => number,
): Promise<void> {
  const totals = [];
  for (const publisher of publishers) {
    const total = await publisher.stop();
    print(`[faults] ${publisher.name} stopped: ${JSON.stringify(total)}`);
    totals.push(total);
  }
  const acked = publishers.map((publisher) => publisher.acked);
  const ids = acked.flatMap((acks) => [...acks.keys()]);
  await Promise.all(all.map((subscriber) => subscriber.until(ids, 60_000)));
  await sleep(500);
  for (const subscriber of all) {
    const records = subscriber.records();
    print(
      `[faults] ${subscriber.name}: ${records.length} records in ${subscriber.sessions} sessions, ` +
        `resumed after ${subscriber.subscribed
          .slice(1)
          .map((s) => s.topics[0]!.after)
          .join(', ')}`,
    );
    expect({
      subscriber: subscriber.name,
      violations: checkDelivery({
        records,
        acked,
        subject: PUBLISHER_SUBJECT,
        unacked: unackedAllowed(totals),
      }),
    }).toEqual({ subscriber: subscriber.name, violations: [] });
  }
  expect(ids.length).toBeGreaterThan(0);
}

describe.sequential(`subscribers under faults (${plan.mode})`, () => {
  it('behavior: kill -9 of the relay holding the subscribers: they resume with their last position on the other relay or on it restarted, and get every acked record once, in order; the publishers on the other relay are acked throughout', async () => {
    const h = await stack({ label: 'subs-kill', finalityDepth: p.finalityDepth, relays: 2 });
    const [a, b] = h.stack.relayIds as [string, string];
    const relayDoor = door(h);
    const all = await subscribers(relayDoor, b);
    // The gateway gives a new session to the least loaded relay, as relays report their loads
    // (every heartbeat): once B's report counts the subscribers, the publishers go to A.
    await waitUntil(
      "relay B's heartbeat counting its subscribers",
      async () => {
        const loads = await relayDoor.loads();
        return loads.get(a) === 0 && (loads.get(b) ?? 0) >= p.subscribers;
      },
      15_000,
    );
    const publishers = Array.from({ length: p.publishers }, (_, i) =>
      h.startPublisher(`s${i}`, p.rate),
    );
    await moreAcks(publishers, p.acksBetween, 'first acks');
    expect(
      await Promise.all(publishers.map((publisher) => h.stack.relayOf(publisher.sessionIds[0]!))),
    ).toEqual(publishers.map(() => a));

    for (let round = 0; round < p.rounds; round++) {
      const onB = all.filter((subscriber) => subscriber.relayId === b);
      const ackedAtKill = publishers.map((publisher) => publisher.acked.size);
      await h.kill9('rtc-relay-2');
      // Every other one resumes on A at once; the rest wait for B to come back.
      const toA = onB.filter((_, i) => (i + round) % 2 === 0);
      const toB = onB.filter((subscriber) => !toA.includes(subscriber));
      await Promise.all(toA.map((subscriber) => subscriber.connect(a)));
      await sleep(p.downMs);
      // B is still dead: the publishers on A went on being acked.
      publishers.forEach((publisher, i) => {
        expect(publisher.acked.size).toBeGreaterThan(ackedAtKill[i]!);
      });
      await h.restart('rtc-relay-2');
      await Promise.all(toB.map((subscriber) => subscriber.connect(b)));
      await moreAcks(publishers, p.acksBetween, `acks after round ${round + 1}`);
    }

    await checkSubscribers(publishers, all, () => 0);
    for (const subscriber of all) {
      expect(subscriber.sessions).toBeGreaterThanOrEqual(2);
      expect(subscriber.subscribed.slice(1).every((s) => s.topics[0]!.after > 0)).toBe(true);
    }
    // The publishers never lost their sessions: A was never touched.
    for (const publisher of publishers) {
      expect(publisher.sessions).toBe(1);
      expect(publisher.nacks).toEqual([]);
    }
  });

  it('behavior: kill -9 of Redis (append-only, fsync always) under subscribers: each keeps receiving, or its session ends and it resumes with its last position; no acked record is missed or delivered twice', async () => {
    const redis: PrivateRedis = await startPrivateRedis();
    cleanups.push(() => redis.stop());
    const h = await stack({
      label: 'subs-redis',
      finalityDepth: p.finalityDepth,
      redisUrl: redis.url,
    });
    const relay = h.stack.relayId;
    const all = await subscribers(door(h), relay);
    const publishers = Array.from({ length: p.publishers }, (_, i) =>
      h.startPublisher(`r${i}`, p.rate),
    );
    await moreAcks(publishers, p.acksBetween, 'first acks');

    for (let round = 0; round < p.rounds; round++) {
      print(`[faults] kill -9 redis-server (round ${round + 1})`);
      await redis.kill9();
      await sleep(p.downMs);
      await redis.restart();
      print('[faults] redis-server restarted');
      // The stream flows again (a publisher whose session stalled opened a new one).
      await moreAcks(publishers, p.acksBetween, `acks after Redis came back (round ${round + 1})`);
      for (const subscriber of all) {
        const ended = subscriber.ended();
        if (!ended) continue;
        print(
          `[faults] ${subscriber.name}: session ended (${ended}); resuming after ${subscriber.last()}`,
        );
        await subscriber.connect(relay);
      }
    }

    // A record whose publish got no ack (unanswered, or nacked unavailable after its queue
    // write could not be confirmed) may have been queued anyway (§11): it may be delivered.
    await checkSubscribers(publishers, all, (totals) =>
      totals.reduce((sum, total) => sum + total.nacked + total.unanswered, 0),
    );
  });
});
