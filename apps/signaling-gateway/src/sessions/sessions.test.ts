import { Value } from '@sinclair/typebox/value';
import { createRelayRegistry, RemoteError } from '@streamanchor/bus';
import { LIMITS, PROBLEMS, RELAY_ERRORS, SessionId } from '@streamanchor/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ANSWER_SDP,
  ANSWER_UFRAG,
  expectProblem,
  type FakeRelay,
  OFFER_SDP,
  startFakeRelay,
  startGateway,
  type TestGateway,
} from '../../test/support';

// The relay side of every test here is a stand-in for rtc-relay (see startFakeRelay):
// a real BullMQ worker on the real relay control queue in real Redis, plus a heartbeat.

let gateway: TestGateway;
let relay: FakeRelay | undefined;
let token: string;

async function post(body: string, headers: Record<string, string> = {}) {
  return gateway.app.fastify.inject({
    method: 'POST',
    url: '/v1/sessions',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}`, ...headers },
    payload: body,
  });
}

async function expectStillServing() {
  const response = await post(OFFER_SDP);
  expect(response.statusCode, response.body).toBe(201);
}

describe('sessions', () => {
  beforeEach(async () => {
    gateway = await startGateway();
    token = await gateway.token();
  });
  afterEach(async () => {
    await relay?.close();
    relay = undefined;
    await gateway.close();
  });

  it('default: POST an offer, get 201 with the answer, Location and ETag; the route is stored', async () => {
    relay = await startFakeRelay(gateway);
    const { url } = await gateway.app.start();

    const response = await fetch(`${url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
      body: OFFER_SDP,
    });

    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toBe('application/sdp');
    expect(await response.text()).toBe(ANSWER_SDP);
    expect(response.headers.get('etag')).toBe(`"${ANSWER_UFRAG}"`);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const location = response.headers.get('location') ?? '';
    const match = /^\/v1\/sessions\/([^/]+)$/.exec(location);
    expect(match).not.toBeNull();
    const sessionId = match![1]!;
    expect(Value.Check(SessionId, sessionId)).toBe(true);

    // What the relay was asked.
    expect(relay.jobs).toHaveLength(1);
    const job = relay.jobs[0]!;
    expect(job.name).toBe('createSession');
    expect(job.id).toBe(`create-${sessionId}`);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
      exp: number;
    };
    expect(job.data).toMatchObject({
      sessionId,
      offerSdp: OFFER_SDP,
      subject: 'alice',
      topics: ['demo', 'telemetry'],
      subscribeTopics: [],
      tokenExpiresAt: claims.exp * 1000,
    });
    expect((job.data as { deadline: number }).deadline).toBeGreaterThan(Date.now() - 60_000);

    // The route: which relay holds it and whose it is, expiring unless refreshed.
    const registry = createRelayRegistry({ redis: gateway.redis, keys: gateway.keys });
    expect(await registry.getSession(sessionId)).toEqual({
      relayId: relay.relayId,
      subject: 'alice',
    });
    const ttl = await gateway.redis.pttl(gateway.keys.session(sessionId));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(gateway.config.SESSION_TTL_MS);
  });

  it('behavior: the least-loaded live relay gets the session; stale relays get none', async () => {
    const busy = await startFakeRelay(gateway, { sessions: 9 });
    const idle = await startFakeRelay(gateway, { sessions: 1 });
    const registry = createRelayRegistry({ redis: gateway.redis, keys: gateway.keys });
    // A relay that stopped heartbeating long ago, with no load at all.
    await registry.heartbeat(
      { relayId: 'relay-stale', sessions: 0, startedAt: 0 },
      60_000,
      Date.now() - 60_000,
    );
    try {
      const first = await post(OFFER_SDP);
      const second = await post(OFFER_SDP);
      expect(first.statusCode).toBe(201);
      expect(second.statusCode).toBe(201);
      expect(idle.jobs.map((job) => job.name)).toEqual(['createSession', 'createSession']);
      expect(busy.jobs).toHaveLength(0);
    } finally {
      await busy.close();
      await idle.close();
    }
  });

  it('behavior: DELETE ends the session on its relay (204), then the session is gone (404)', async () => {
    relay = await startFakeRelay(gateway);
    const created = await post(OFFER_SDP);
    const location = created.headers.location as string;
    const sessionId = location.split('/').pop()!;

    const deleted = await gateway.app.fastify.inject({
      method: 'DELETE',
      url: location,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe('');
    expect(deleted.headers['content-type']).toBeUndefined();
    expect(relay.jobs.map((job) => job.name)).toEqual(['createSession', 'deleteSession']);
    expect(relay.jobs[1]!.data).toMatchObject({ sessionId });
    expect(relay.jobs[1]!.id).toMatch(new RegExp(`^delete-${sessionId}-[0-9a-f]+$`));
    expect(await gateway.redis.exists(gateway.keys.session(sessionId))).toBe(0);

    const again = await gateway.app.fastify.inject({
      method: 'DELETE',
      url: location,
      headers: { authorization: `Bearer ${token}` },
    });
    expectProblem(again, 'session_not_found');
    expect(relay.jobs).toHaveLength(2);
  });

  it('behavior: DELETE of a session whose relay stopped heartbeating drops the route without asking it', async () => {
    const registry = createRelayRegistry({ redis: gateway.redis, keys: gateway.keys });
    const sessionId = 'AAAAAAAAAAAAAAAAAAAAAA';
    await registry.setSession(sessionId, { relayId: 'relay-gone', subject: 'alice' }, 30_000);
    const response = await gateway.app.fastify.inject({
      method: 'DELETE',
      url: `/v1/sessions/${sessionId}`,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.statusCode).toBe(204);
    expect(await registry.getSession(sessionId)).toBeUndefined();
  });

  it('behavior: a relay that does not hold the session still ends it (204, route dropped)', async () => {
    // The relay answers { deleted: false } for a session it does not hold (no refusal).
    relay = await startFakeRelay(gateway, {
      process: async (job) => {
        if (job.name === 'createSession') return { answerSdp: ANSWER_SDP };
        return { deleted: false };
      },
    });
    const created = await post(OFFER_SDP);
    const location = created.headers.location as string;
    const response = await gateway.app.fastify.inject({
      method: 'DELETE',
      url: location,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.statusCode).toBe(204);
    expect(await gateway.redis.exists(gateway.keys.session(location.split('/').pop()!))).toBe(0);
  });

  it('behavior: OPTIONS /v1/sessions tells what POST accepts', async () => {
    const response = await gateway.app.fastify.inject({ method: 'OPTIONS', url: '/v1/sessions' });
    expect(response.statusCode).toBe(204);
    expect(response.headers['accept-post']).toBe('application/sdp');
    expect(response.headers.allow).toBe('OPTIONS, POST');
  });

  it('behavior: one QueueEvents per relay is reused across requests, and closed on stop', async () => {
    relay = await startFakeRelay(gateway);
    // BullMQ names a QueueEvents connection `<prefix>:<base64 queue name>:qe`.
    const eventsClientName = `${gateway.keys.bull}:${Buffer.from(`relay-control.${relay.relayId}`).toString('base64')}:qe`;
    const eventsConnections = async () => {
      const clients = (await gateway.redis.client('LIST')) as string;
      return clients.split('\n').filter((line) => line.includes(`name=${eventsClientName} `))
        .length;
    };
    for (let i = 0; i < 3; i += 1) expect((await post(OFFER_SDP)).statusCode).toBe(201);
    expect(await eventsConnections()).toBe(1);
    await gateway.app.stop();
    // The socket is closed client-side; Redis notices on its next loop turn.
    await expect.poll(eventsConnections, { timeout: 5000 }).toBe(0);
  });

  it('error: a wrong or missing Content-Type is 415 and no relay is asked', async () => {
    relay = await startFakeRelay(gateway);
    for (const contentType of [
      'text/plain',
      'application/json',
      'application/sdp-foo',
      'multipart/form-data; boundary=x',
    ]) {
      const response = await post(
        contentType === 'application/json' ? JSON.stringify({ sdp: OFFER_SDP }) : OFFER_SDP,
        {
          'content-type': contentType,
        },
      );
      expectProblem(response, 'unsupported_media_type');
    }
    const noType = await gateway.app.fastify.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: { authorization: `Bearer ${token}` },
      payload: Buffer.from(OFFER_SDP),
    });
    expectProblem(noType, 'unsupported_media_type');
    const noBody = await gateway.app.fastify.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: { authorization: `Bearer ${token}` },
    });
    expectProblem(noBody, 'unsupported_media_type');
    expect(relay.jobs).toHaveLength(0);
    await expectStillServing();
  });

  it('error: a body over LIMITS.maxSdpBytes is 413 (declared or streamed)', async () => {
    relay = await startFakeRelay(gateway);
    const huge = `${OFFER_SDP}a=x:${'y'.repeat(LIMITS.maxSdpBytes)}\r\n`;
    expectProblem(await post(huge), 'payload_too_large');

    // Over real HTTP with chunked encoding (no Content-Length): cut off while streaming.
    const { url } = await gateway.app.start();
    const chunks = [OFFER_SDP, 'a=x:'.padEnd(LIMITS.maxSdpBytes, 'z'), 'a=y:1\r\n'];
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });
    const response = await fetch(`${url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expectProblem(
      {
        statusCode: response.status,
        headers: Object.fromEntries(response.headers),
        body: await response.text(),
      },
      'payload_too_large',
    );
    expect(relay.jobs).toHaveLength(0);
    await expectStillServing();
  });

  it('behavior: Content-Type matches case-insensitively and its parameters are ignored', async () => {
    relay = await startFakeRelay(gateway);
    for (const type of [
      'Application/SDP',
      'application/sdp; charset=utf-8',
      'application/sdp ;x=1',
    ]) {
      const response = await post(OFFER_SDP, { 'content-type': type });
      expect(response.statusCode, type).toBe(201);
    }
    for (const type of ['application/sdp+json', 'text/plain', 'application/trickle-ice-sdpfrag']) {
      expectProblem(await post(OFFER_SDP, { 'content-type': type }), 'unsupported_media_type');
    }
  });

  it('error: malformed SDP is 400 invalid_sdp before any relay is asked', async () => {
    relay = await startFakeRelay(gateway);
    const without = (prefix: string) =>
      OFFER_SDP.split('\r\n')
        .filter((line) => !line.startsWith(prefix))
        .join('\r\n');
    const cases: Record<string, string> = {
      empty: '',
      whitespace: '   \r\n',
      'not SDP': 'hello world',
      'JSON text': JSON.stringify({ type: 'offer', sdp: OFFER_SDP }),
      'no v=0 first': OFFER_SDP.replace('v=0\r\n', ''),
      'no data channel': without('m=application'),
      'audio only': OFFER_SDP.replace(
        'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
        'm=audio 9 UDP/TLS/RTP/SAVPF 111',
      ),
      'no ice-ufrag': without('a=ice-ufrag'),
      'no ice-pwd': without('a=ice-pwd'),
      'no fingerprint': without('a=fingerprint'),
      'bad fingerprint': OFFER_SDP.replace(/a=fingerprint:.*/, 'a=fingerprint:sha-256 not-hex'),
      'control characters': OFFER_SDP.replace('s=-', 's=\u0000-'),
    };
    for (const [name, sdp] of Object.entries(cases)) {
      const body = expectProblem(await post(sdp), 'invalid_sdp');
      expect(typeof body.detail, name).toBe('string');
    }
    expect(relay.jobs).toHaveLength(0);
    await expectStillServing();
  });

  it('error: an offer the relay rejects as invalid_sdp is 400 with the relay’s reason', async () => {
    relay = await startFakeRelay(gateway, {
      process: async () => {
        throw new RemoteError('invalid_sdp', 'setRemoteDescription failed: no DTLS setup role');
      },
    });
    const body = expectProblem(await post(OFFER_SDP), 'invalid_sdp');
    expect(body.detail).toBe('setRemoteDescription failed: no DTLS setup role');
    expect(await countSessionRoutes()).toBe(0);
  });

  it('error: every relay refusal becomes the problem RELAY_ERRORS maps it to', async () => {
    let code = '';
    relay = await startFakeRelay(gateway, {
      process: async () => {
        throw new RemoteError(code, `SECRET relay detail for ${code}`);
      },
    });
    for (const [relayCode, entry] of Object.entries(RELAY_ERRORS)) {
      code = relayCode;
      const response = await post(OFFER_SDP);
      const body = expectProblem(response, entry.problem);
      const forwarded = (entry as { detail?: string }).detail === 'relay';
      expect(body.detail ?? '', relayCode).toContain(forwarded ? 'SECRET' : '');
      if (!forwarded) expect(response.body, relayCode).not.toContain('SECRET');
      if (PROBLEMS[entry.problem].status === 503)
        expect(response.headers['retry-after'], relayCode).toBe('2');
      if (PROBLEMS[entry.problem].status === 401)
        expect(response.headers['www-authenticate'], relayCode).toMatch(/^Bearer/);
    }
    // Codes outside the table (the dead entries of old: overloaded, expired…) are 500s.
    for (const unknown of ['overloaded', 'expired', 'unavailable', 'bad_request']) {
      code = unknown;
      const response = await post(OFFER_SDP);
      expectProblem(response, 'internal_error');
      expect(response.body).not.toContain('SECRET');
    }
    expect(await countSessionRoutes()).toBe(0);
  });

  it('error: a relay that fails otherwise is 500 (nothing internal leaked) or 503 when it is full', async () => {
    let mode: 'crash' | 'full' = 'crash';
    relay = await startFakeRelay(gateway, {
      process: async () => {
        if (mode === 'crash') throw new Error('SECRET-INTERNAL-DETAIL at relay.ts:12');
        throw new RemoteError('at_capacity', 'too many sessions');
      },
    });
    const crashed = await post(OFFER_SDP);
    const body = expectProblem(crashed, 'internal_error');
    expect(body.detail).toBeUndefined();
    expect(crashed.body).not.toContain('SECRET');
    mode = 'full';
    const full = await post(OFFER_SDP);
    expectProblem(full, 'no_relay_available');
    expect(full.headers['retry-after']).toBe('2');
    expect(await countSessionRoutes()).toBe(0);
  });

  it('error: no live relay is 503 no_relay_available with Retry-After', async () => {
    const response = await post(OFFER_SDP);
    expectProblem(response, 'no_relay_available');
    expect(response.headers['retry-after']).toBe('2');
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('error: a relay that never answers is 503 relay_timeout with Retry-After', async () => {
    await gateway.close();
    gateway = await startGateway({ SIGNALING_TIMEOUT_MS: '300' });
    token = await gateway.token();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    relay = await startFakeRelay(gateway, {
      process: () => gate.then(() => ({ answerSdp: ANSWER_SDP })),
    });
    try {
      const response = await post(OFFER_SDP);
      expectProblem(response, 'relay_timeout');
      expect(response.headers['retry-after']).toBe('2');
      expect(relay.jobs).toHaveLength(1);
      expect(await countSessionRoutes()).toBe(0);
    } finally {
      release();
    }
  });

  it('error: a registered relay with no worker at all times out too', async () => {
    await gateway.close();
    gateway = await startGateway({ SIGNALING_TIMEOUT_MS: '300' });
    token = await gateway.token();
    const registry = createRelayRegistry({ redis: gateway.redis, keys: gateway.keys });
    await registry.heartbeat(
      { relayId: 'relay-silent', sessions: 0, startedAt: Date.now() },
      60_000,
    );
    const response = await post(OFFER_SDP);
    expectProblem(response, 'relay_timeout');
    // The unanswered job was withdrawn, so a relay starting later does not act on it.
    const waiting = await gateway.redis.llen(
      `${gateway.keys.bull}:relay-control.relay-silent:wait`,
    );
    expect(waiting).toBe(0);
  });

  it("error: DELETE of another subject's session is 404 and leaves it alone", async () => {
    relay = await startFakeRelay(gateway);
    const created = await post(OFFER_SDP);
    const location = created.headers.location as string;
    const mallory = await gateway.token({ subject: 'mallory' });
    const response = await gateway.app.fastify.inject({
      method: 'DELETE',
      url: location,
      headers: { authorization: `Bearer ${mallory}` },
    });
    expectProblem(response, 'session_not_found');
    expect(relay.jobs.map((job) => job.name)).toEqual(['createSession']);
    const owner = await gateway.app.fastify.inject({
      method: 'DELETE',
      url: location,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(owner.statusCode).toBe(204);
  });

  it('error: DELETE needs a token and a well-formed session id', async () => {
    relay = await startFakeRelay(gateway);
    const noToken = await gateway.app.fastify.inject({
      method: 'DELETE',
      url: '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA',
    });
    expectProblem(noToken, 'unauthorized');
    expect(noToken.headers['www-authenticate']).toBe('Bearer');
    const badId = await gateway.app.fastify.inject({
      method: 'DELETE',
      url: '/v1/sessions/not-a-session',
      headers: { authorization: `Bearer ${token}` },
    });
    expectProblem(badId, 'bad_request');
    await expectStillServing();
  });
});

async function countSessionRoutes(): Promise<number> {
  const [, keys] = await gateway.redis.scan(
    '0',
    'MATCH',
    `${gateway.keys.prefix}:session:*`,
    'COUNT',
    1000,
  );
  return keys.length;
}
