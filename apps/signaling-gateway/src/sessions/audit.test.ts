import { createQueue } from '@streamanchor/bus';
import type { AuditEvent } from '@streamanchor/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type FakeRelay,
  OFFER_SDP,
  startFakeRelay,
  startGateway,
  type TestGateway,
} from '../../test/support';

let gateway: TestGateway | undefined;
let relay: FakeRelay | undefined;
afterEach(async () => {
  await relay?.close();
  await gateway?.close();
  relay = undefined;
  gateway = undefined;
});

const post = (g: TestGateway, token: string) =>
  g.app.fastify.inject({
    method: 'POST',
    url: '/v1/sessions',
    remoteAddress: '203.0.113.7',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
    payload: OFFER_SDP,
  });

/** Every event the gateway queued for the writer's audit log (real Redis, the real queue). */
async function queuedEvents(g: TestGateway): Promise<AuditEvent[]> {
  const queue = createQueue({ connection: g.redis, keys: g.keys }, 'audit');
  try {
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'completed']);
    return jobs.flatMap((job) => job.data.events);
  } finally {
    await queue.close();
  }
}

describe('audit events from the gateway', () => {
  it('default: an opened session, a refused token and a rate limit reach the audit queue', async () => {
    gateway = await startGateway({
      SESSION_RATE_PER_SUBJECT: '1',
      SESSION_RATE_WINDOW_MS: '60000',
    });
    relay = await startFakeRelay(gateway);
    const g = gateway;
    const token = await g.token({ subject: 'alice' });
    expect((await post(g, token)).statusCode).toBe(201);
    expect((await post(g, 'not-a-token')).statusCode).toBe(401);
    expect((await post(g, token)).statusCode).toBe(429);

    await expect
      .poll(async () => (await queuedEvents(g)).map((event) => event.kind).sort(), {
        timeout: 10_000,
      })
      .toEqual(['rate_limited', 'session_opened', 'token_refused']);
    const events = await queuedEvents(g);
    expect(events.find((e) => e.kind === 'session_opened')).toMatchObject({
      subject: 'alice',
      address: '203.0.113.7',
      relayId: relay.relayId,
    });
    expect(events.find((e) => e.kind === 'rate_limited')).toMatchObject({
      subject: 'alice',
      details: { limit: 'sessions per subject' },
    });
    expect(events.find((e) => e.kind === 'token_refused')).toMatchObject({
      address: '203.0.113.7',
    });
  });
});
