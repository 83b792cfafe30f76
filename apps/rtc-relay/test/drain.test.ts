/**
 * Drain on SIGTERM (docs/protocol.md §5.4.1), with the relay as it runs in production:
 * src/main.ts in a child process, clients in child processes, the gateway's side of the
 * control queue and a stand-in writer in this one. Redis is real.
 */
import { RemoteError } from '@streamanchor/bus';
import type { ServerMessage } from '@streamanchor/protocol';
import { afterEach, describe, expect, test } from 'vitest';
import { ClientProcess } from './support/client';
import { type RelayProcess, startRelayProcess } from './support/relay-process';

let relay: RelayProcess | undefined;
let clients: ClientProcess[] = [];

afterEach(async () => {
  await Promise.all(clients.map((client) => client.stop()));
  clients = [];
  await relay?.close();
  relay = undefined;
});

const V2 = { protocol: 'streamanchor.v2' };
const isDrainNotice = (m: ServerMessage) =>
  m.type === 'nack' && m.id === null && m.code === 'relay_draining';

/** The answers to publishes, in the order they came: acks flattened from `acks` messages. */
function answers(messages: ServerMessage[]): { id: string | null; code: string }[] {
  return messages.flatMap((m): { id: string | null; code: string }[] => {
    if (m.type === 'acks') return m.acks.map((ack) => ({ id: ack.id, code: 'ack' }));
    if (m.type === 'nack') return [{ id: m.id, code: m.code }];
    return [];
  });
}

describe('relay drain', () => {
  test('behavior: on SIGTERM the relay is marked draining, refuses new sessions, acks what it got, tells every session relay_draining, and exits 0 once they left', async () => {
    [relay, ...clients] = await Promise.all([
      startRelayProcess({ DRAIN_TIMEOUT_MS: '15000' }),
      ClientProcess.spawn(),
      ClientProcess.spawn(),
    ]);
    const [publisher, subscriber] = clients as [ClientProcess, ClientProcess];
    await relay.connect(publisher, {}, V2);
    await relay.connect(subscriber, { subscribeTopics: ['demo'] }, V2);
    subscriber.send(JSON.stringify({ type: 'subscribe', id: 's1', topics: [{ topic: 'demo' }] }));
    await subscriber.message((m) => m.type === 'subscribed');

    // Publishes keep coming while the relay drains: the first ones before SIGTERM.
    const total = 150;
    for (let i = 0; i < 50; i++) {
      publisher.send(JSON.stringify({ type: 'publish', id: `p${i}`, topic: 'demo', payload: i }));
    }
    await publisher.message((m) => m.type === 'acks');
    relay.kill('SIGTERM');
    const signalledAt = Date.now();
    for (let i = 50; i < total; i++) {
      publisher.send(JSON.stringify({ type: 'publish', id: `p${i}`, topic: 'demo', payload: i }));
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }

    // The registry says draining (the gateway places no session on it); a createSession
    // that still reaches it is refused shutting_down (503 no_relay_available at the gateway).
    await expect.poll(async () => (await relay!.registryEntry())?.draining).toBe(true);
    const late = await ClientProcess.spawn();
    clients.push(late);
    const refused = await relay.createSession({ offerSdp: await late.offer(V2) }).catch((e) => e);
    expect(refused).toBeInstanceOf(RemoteError);
    expect(refused).toMatchObject({ code: 'shutting_down' });

    // Both sessions get the notice; every publish gets exactly one answer: acks for all
    // that arrived before the notice, relay_draining nacks for the rest.
    await publisher.message(isDrainNotice);
    await subscriber.message(isDrainNotice);
    await expect
      .poll(() => answers(publisher.messages()).length, { timeout: 10_000 })
      .toBe(total + 1);
    const replies = answers(publisher.messages());
    const notice = replies.findIndex((reply) => reply.id === null);
    expect(notice).toBeGreaterThanOrEqual(50);
    const before = replies.slice(0, notice);
    const after = replies.slice(notice + 1);
    expect(before).toEqual(before.map((_, i) => ({ id: `p${i}`, code: 'ack' })));
    expect(after).toEqual(after.map((_, i) => ({ id: `p${notice + i}`, code: 'relay_draining' })));
    const drainNotice = publisher.messages().find(isDrainNotice);
    expect(drainNotice).toMatchObject({ message: expect.stringMatching(/15000 ms/) });

    // Every acked record was queued, and the subscriber keeps getting them while draining.
    await expect
      .poll(() => relay!.recordJobs.reduce((n, job) => n + job.records.length, 0))
      .toBe(notice);
    await expect
      .poll(() =>
        subscriber
          .messages()
          .flatMap((m) => (m.type === 'records' ? m.records : []))
          .map((record) => record.payload),
      )
      .toEqual(before.map((_, i) => i));

    // The clients leave (as the SDK does once it reconnected elsewhere): the relay exits 0
    // well before DRAIN_TIMEOUT_MS.
    publisher.command({ cmd: 'close' });
    subscriber.command({ cmd: 'close' });
    const exit = await relay.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(10_000);
    expect(relay.output()).toMatch(/"msg":"relay drained"/);
  });

  test('behavior: a client that stays is closed after DRAIN_TIMEOUT_MS; the relay exits 0', async () => {
    [relay, ...clients] = await Promise.all([
      startRelayProcess({ DRAIN_TIMEOUT_MS: '1000' }),
      ClientProcess.spawn(),
    ]);
    const [client] = clients as [ClientProcess];
    await relay.connect(client, {}, V2);
    relay.kill('SIGTERM');
    const signalledAt = Date.now();
    await client.message(isDrainNotice);
    // A publish after the notice is not taken.
    client.send(JSON.stringify({ type: 'publish', id: 'late', topic: 'demo', payload: 1 }));
    expect(await client.message((m) => m.type === 'nack' && m.id === 'late')).toMatchObject({
      code: 'relay_draining',
    });
    await client.waitFor((e) => e.event === 'closed', 10_000);
    expect(await relay.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - signalledAt).toBeLessThan(6000);
    expect(relay.output()).toMatch(/drain over with sessions still open/);
  });

  test('behavior: a second SIGTERM ends the drain at once', async () => {
    [relay, ...clients] = await Promise.all([
      startRelayProcess({ DRAIN_TIMEOUT_MS: '60000' }),
      ClientProcess.spawn(),
    ]);
    const [client] = clients as [ClientProcess];
    await relay.connect(client, {}, V2);
    relay.kill('SIGTERM');
    await client.message(isDrainNotice);
    const secondAt = Date.now();
    relay.kill('SIGTERM');
    await client.waitFor((e) => e.event === 'closed', 10_000);
    expect(await relay.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - secondAt).toBeLessThan(5000);
  });
});
