import { connect, type Socket } from 'node:net';
import { createRelayRegistry, subjectSuspendedKey } from '@streamanchor/bus';
import { createLogger } from '@streamanchor/service-kit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  expectProblem,
  type FakeRelay,
  OFFER_SDP,
  startFakeRelay,
  startGateway,
  type TestGateway,
} from '../../test/support';
import { createApp } from '../app';

let gateway: TestGateway | undefined;
let relay: FakeRelay | undefined;
afterEach(async () => {
  await relay?.close();
  await gateway?.close();
  relay = undefined;
  gateway = undefined;
});

async function start(env: Record<string, string>) {
  gateway = await startGateway(env);
  relay = await startFakeRelay(gateway);
  return { gateway, relay };
}

const post = (g: TestGateway, token: string, remoteAddress = '203.0.113.7') =>
  g.app.fastify.inject({
    method: 'POST',
    url: '/v1/sessions',
    remoteAddress,
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
    payload: OFFER_SDP,
  });

describe('session rate limits (Redis, shared by every gateway)', () => {
  it('error: more POSTs per address than SESSION_RATE_PER_IP is 429 rate_limited with Retry-After', async () => {
    const { gateway: g } = await start({
      SESSION_RATE_PER_IP: '3',
      SESSION_RATE_WINDOW_MS: '60000',
    });
    for (let i = 0; i < 3; i++) {
      const token = await g.token({ subject: `user-${i}` });
      expect((await post(g, token)).statusCode).toBe(201);
    }
    // Even without a token: the per-address limit comes before authentication.
    for (const token of [await g.token({ subject: 'user-9' }), 'not-a-token']) {
      const response = await post(g, token);
      const body = expectProblem(response, 'rate_limited');
      expect(body.detail).toMatch(/client address/);
      expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
    }
    // Another address is not affected.
    expect((await post(g, await g.token(), '198.51.100.1')).statusCode).toBe(201);
    // The counters live in Redis under the deployment's prefix.
    expect(await g.redis.keys(`${g.prefix}:rate-limit:*`)).not.toHaveLength(0);
  });

  it('error: behind one proxy (TRUST_PROXY=1), an X-Forwarded-For the client wrote itself does not change its address', async () => {
    const { gateway: g } = await start({
      TRUST_PROXY: '1',
      SESSION_RATE_PER_IP: '1',
      SESSION_RATE_WINDOW_MS: '60000',
    });
    // The proxy (the socket) appends the address it saw after whatever the client sent.
    const viaProxy = async (forged: string) =>
      g.app.fastify.inject({
        method: 'POST',
        url: '/v1/sessions',
        remoteAddress: '172.28.0.5',
        headers: {
          'content-type': 'application/sdp',
          authorization: `Bearer ${await g.token({ subject: `user-${forged}` })}`,
          'x-forwarded-for': `${forged}, 203.0.113.7`,
        },
        payload: OFFER_SDP,
      });
    expect((await viaProxy('10.0.0.1')).statusCode).toBe(201);
    const second = await viaProxy('10.0.0.2');
    expect(expectProblem(second, 'rate_limited').detail).toMatch(/client address/);
    // Another client behind the same proxy has its own count.
    const other = await g.app.fastify.inject({
      method: 'POST',
      url: '/v1/sessions',
      remoteAddress: '172.28.0.5',
      headers: {
        'content-type': 'application/sdp',
        authorization: `Bearer ${await g.token({ subject: 'user-other' })}`,
        'x-forwarded-for': '198.51.100.1',
      },
      payload: OFFER_SDP,
    });
    expect(other.statusCode).toBe(201);
  });

  it('error: more POSTs per subject than SESSION_RATE_PER_SUBJECT is 429, across addresses and gateways', async () => {
    const { gateway: g } = await start({ SESSION_RATE_PER_SUBJECT: '2' });
    // A second gateway of the same deployment (same Redis, same prefix) shares the count.
    const other = {
      app: createApp({
        config: g.config,
        logger: createLogger({ service: 'second-gateway', level: 'silent' }),
        redis: g.redis,
        keys: g.keys,
      }),
    } as TestGateway;
    try {
      const token = await g.token({ subject: 'mallory' });
      expect((await post(g, token, '192.0.2.1')).statusCode).toBe(201);
      expect((await post(other, token, '192.0.2.2')).statusCode).toBe(201);
      const response = await post(g, token, '192.0.2.3');
      expect(expectProblem(response, 'rate_limited').detail).toMatch(/per subject/);
      expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
      expect((await post(g, await g.token({ subject: 'alice' }), '192.0.2.3')).statusCode).toBe(
        201,
      );
    } finally {
      await other.app.stop();
    }
  });
});

/** The Redis counter of a rate-limit key (`ip:…` / `sub:…`), null when there is none. */
async function rateCounter(g: TestGateway, key: string): Promise<string | null> {
  const found = await g.redis.keys(`${g.prefix}:rate-limit:*${key}`);
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0] ? g.redis.get(found[0]) : null;
}

describe('refusals remembered per gateway (no Redis round trip until the window ends)', () => {
  it('behavior: after the first per-subject 429, further POSTs get the same 429 without asking Redis, and are served once the window ends', async () => {
    const { gateway: g } = await start({
      SESSION_RATE_PER_SUBJECT: '2',
      SESSION_RATE_WINDOW_MS: '1500',
    });
    const token = await g.token({ subject: 'grabber' });
    const counter = `sub:${Buffer.from('grabber').toString('base64url')}`;
    const ipCounter = 'ip:203.0.113.7';
    expect((await post(g, token)).statusCode).toBe(201);
    expect((await post(g, token)).statusCode).toBe(201);
    const first = await post(g, token);
    const detail = expectProblem(first, 'rate_limited').detail;
    expect(detail).toMatch(/^At most 2 new sessions per subject every 1\.5 s; retry in [12] s$/);
    expect(first.headers['retry-after']).toBe(/retry in (\d+) s/.exec(String(detail))?.[1]);
    expect(await rateCounter(g, counter)).toBe('3');

    for (let i = 0; i < 5; i++) {
      const again = await post(g, token);
      const body = expectProblem(again, 'rate_limited');
      expect(body.detail).toMatch(
        /^At most 2 new sessions per subject every 1\.5 s; retry in [12] s$/,
      );
      expect(again.headers['retry-after']).toBe(/retry in (\d+) s/.exec(String(body.detail))?.[1]);
      expect(Number(again.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // Redis was not asked again: the subject's counter stopped at the refused request (the
    // per-address limit, checked first, still counts every request).
    expect(await rateCounter(g, counter)).toBe('3');
    expect(await rateCounter(g, ipCounter)).toBe('8');

    // Once the window is over, the subject is served again (and counted in Redis anew).
    await new Promise((resolve) =>
      setTimeout(resolve, Number(first.headers['retry-after']) * 1000 + 100),
    );
    expect((await post(g, token)).statusCode).toBe(201);
    expect(await rateCounter(g, counter)).toBe('1');
  });

  it('behavior: the per-address refusal is remembered too, with the same problem', async () => {
    const { gateway: g } = await start({
      SESSION_RATE_PER_IP: '1',
      SESSION_RATE_WINDOW_MS: '60000',
    });
    const ipCounter = 'ip:203.0.113.7';
    expect((await post(g, await g.token())).statusCode).toBe(201);
    for (let i = 0; i < 4; i++) {
      const refused = await post(g, i % 2 ? 'not-a-token' : await g.token());
      const body = expectProblem(refused, 'rate_limited');
      expect(body.detail).toMatch(
        /^At most 1 new sessions per client address every 60 s; retry in (59|60) s$/,
      );
      expect(refused.headers['retry-after']).toBe(
        /retry in (\d+) s/.exec(String(body.detail))?.[1],
      );
    }
    expect(await rateCounter(g, ipCounter)).toBe('2');
  });
});

describe('live sessions per subject', () => {
  it('error: beyond MAX_SESSIONS_PER_SUBJECT a POST is 429 until a session ends', async () => {
    const { gateway: g } = await start({ MAX_SESSIONS_PER_SUBJECT: '2' });
    const token = await g.token({ subject: 'carol' });
    const first = await post(g, token);
    expect(first.statusCode).toBe(201);
    expect((await post(g, token)).statusCode).toBe(201);
    const full = await post(g, token);
    expect(expectProblem(full, 'rate_limited').detail).toMatch(/holds 2 live sessions/);
    expect(Number(full.headers['retry-after'])).toBeGreaterThan(0);
    // Other subjects are not affected.
    expect((await post(g, await g.token({ subject: 'dave' }))).statusCode).toBe(201);

    const deleted = await g.app.fastify.inject({
      method: 'DELETE',
      url: String(first.headers.location),
      headers: { authorization: `Bearer ${token}` },
    });
    expect(deleted.statusCode).toBe(204);
    expect((await post(g, token)).statusCode).toBe(201);
  });

  it('behavior: a maxSessions claim replaces the default; concurrent POSTs cannot overshoot', async () => {
    const { gateway: g } = await start({ MAX_SESSIONS_PER_SUBJECT: '1' });
    const { SignJWT } = await import('jose');
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({
      sub: 'erin',
      topics: ['demo'],
      maxSessions: 3,
      iat: now,
      exp: now + 600,
    })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(g.config.JWT_SECRET));
    const responses = await Promise.all(Array.from({ length: 8 }, () => post(g, token)));
    expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(3);
    for (const r of responses.filter((r) => r.statusCode !== 201)) expectProblem(r, 'rate_limited');
  });

  it('behavior: a failed session gives its slot back; expired routes stop counting (crash-safe by TTL)', async () => {
    gateway = await startGateway({ MAX_SESSIONS_PER_SUBJECT: '1' });
    // No relay: 503, and the reservation is released.
    const token = await gateway.token({ subject: 'frank' });
    expectProblem(await post(gateway, token), 'no_relay_available');
    relay = await startFakeRelay(gateway);
    expect((await post(gateway, token)).statusCode).toBe(201);
    expectProblem(await post(gateway, token), 'rate_limited');

    // A relay that died stops refreshing its routes: once they expire they no longer count.
    const registry = createRelayRegistry({ redis: gateway.redis, keys: gateway.keys });
    const later =
      Date.now() + gateway.config.SESSION_TTL_MS + gateway.config.SIGNALING_TIMEOUT_MS + 1;
    expect(await registry.countSessions('frank')).toBe(1);
    expect(await registry.countSessions('frank', later)).toBe(0);
    const reserved = await registry.reserveSession('frank', 'x'.repeat(22), 1, 1000, later);
    expect(reserved).toEqual({ reserved: true, live: 0 });
  });
});

describe('suspended subjects', () => {
  it('behavior: a subject a relay suspended gets 429 with Retry-After on every POST until the suspension ends; others are served', async () => {
    gateway = await startGateway({});
    relay = await startFakeRelay(gateway);
    const registry = createRelayRegistry({ redis: gateway.redis, keys: gateway.keys });
    // What a relay does when it closes one of mallory's sessions for refused messages.
    await registry.suspendSubject('mallory', 20_000);
    const refused = await post(gateway, await gateway.token({ subject: 'mallory' }));
    const body = expectProblem(refused, 'rate_limited');
    expect(body.detail).toMatch(
      /closed for sending refused messages; new sessions are refused for (19|20) s more/,
    );
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(19);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(20);
    // No slot was taken while suspended.
    expect(await registry.countSessions('mallory')).toBe(0);
    expect((await post(gateway, await gateway.token({ subject: 'erin' }))).statusCode).toBe(201);
    // A shorter suspension does not cut the running one short; once it ends, sessions open.
    await registry.suspendSubject('mallory', 10);
    expect(await gateway.redis.pttl(subjectSuspendedKey(gateway.keys, 'mallory'))).toBeGreaterThan(
      10_000,
    );
    await gateway.redis.del(subjectSuspendedKey(gateway.keys, 'mallory'));
    expect((await post(gateway, await gateway.token({ subject: 'mallory' }))).statusCode).toBe(201);
  });
});

describe('signaling jobs keep no SDP in Redis', () => {
  it('behavior: once the gateway has the answer, the job holds neither the offer nor the answer', async () => {
    const { gateway: g } = await start({});
    const response = await post(g, await g.token());
    expect(response.statusCode).toBe(201);
    const sessionId = String(response.headers.location).split('/').pop();
    const jobKeys = await g.redis.keys(`${g.keys.bull}:*:create-${sessionId}*`);
    expect(jobKeys.length).toBeGreaterThan(0);
    for (const jobKey of jobKeys) {
      if ((await g.redis.type(jobKey)) !== 'hash') continue;
      const job = await g.redis.hgetall(jobKey);
      expect(job.data).toBe('{}');
      expect(job.returnvalue ?? 'null').toBe('null');
      expect(JSON.stringify(job)).not.toMatch(/ice-pwd|v=0/);
    }
  });
});

/** Opens a raw TCP connection to the listening gateway and collects what it answers. */
function rawRequest(
  url: string,
  chunks: string[],
  /** Sent once the first response has arrived (a second request on the kept-alive socket). */
  afterFirstResponse?: string,
): Promise<{ response: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(Number(port), hostname);
    let response = '';
    socket.setEncoding('utf8');
    let followUp = afterFirstResponse;
    socket.on('data', (data) => {
      response += data;
      if (followUp !== undefined && response.includes('\r\n\r\n')) {
        socket.write(followUp);
        followUp = undefined;
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ response, closed: true }));
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
    });
  });
}

function problemOf(raw: string): { status: number; type: string; body: Record<string, unknown> } {
  const [head, ...rest] = raw.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? '')?.[1]);
  const type = /content-type: *([^\r\n]+)/i.exec(head ?? '')?.[1] ?? '';
  return { status, type, body: JSON.parse(rest.join('\r\n\r\n')) as Record<string, unknown> };
}

describe('HTTP timeouts and parser errors', () => {
  it('error: a body shorter than its Content-Length is answered 408 problem and the socket closed', async () => {
    const { gateway: g } = await start({ REQUEST_TIMEOUT_MS: '300', HEADERS_TIMEOUT_MS: '200' });
    const { url } = await g.app.start();
    const token = await g.token();
    const { response, closed } = await rawRequest(url, [
      `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nAuthorization: Bearer ${token}\r\nContent-Length: 5000\r\n\r\n`,
      OFFER_SDP.slice(0, 100),
    ]);
    expect(closed).toBe(true);
    const problem = problemOf(response);
    expect(problem.status).toBe(408);
    expect(problem.type).toMatch(/^application\/problem\+json/);
    expect(problem.body.code).toBe('request_timeout');
  });

  it('error: headers that never finish are answered 408 problem and the socket closed', async () => {
    const { gateway: g } = await start({ REQUEST_TIMEOUT_MS: '300', HEADERS_TIMEOUT_MS: '200' });
    const { url } = await g.app.start();
    const { response, closed } = await rawRequest(url, ['GET /healthz HTTP/1.1\r\nHost: x\r\n']);
    expect(closed).toBe(true);
    expect(problemOf(response).body.code).toBe('request_timeout');
  });

  it('error: oversized headers, also on a keep-alive socket after a first request, are 431 problem+json', async () => {
    const { gateway: g } = await start({});
    const { url } = await g.app.start();
    const big = `X-Big: ${'a'.repeat(20_000)}\r\n`;
    const alone = await rawRequest(url, [`GET /healthz HTTP/1.1\r\nHost: x\r\n${big}\r\n`]);
    expect(problemOf(alone.response)).toMatchObject({
      status: 431,
      body: { code: 'headers_too_large' },
    });

    const { response } = await rawRequest(
      url,
      ['GET /nope HTTP/1.1\r\nHost: x\r\n\r\n'],
      `GET /healthz HTTP/1.1\r\nHost: x\r\n${big}\r\n`,
    );
    expect(response).toMatch(/^HTTP\/1\.1 404 /);
    const second = response.slice(response.indexOf('HTTP/1.1', 10));
    expect(response.indexOf('HTTP/1.1', 10)).toBeGreaterThan(0);
    const problem = problemOf(second);
    expect(problem.status).toBe(431);
    expect(problem.type).toMatch(/^application\/problem\+json/);
    expect(problem.body.code).toBe('headers_too_large');
  });

  it('error: a missing Host or a garbled request line is 400 problem+json', async () => {
    const { gateway: g } = await start({});
    const { url } = await g.app.start();
    const noHost = await rawRequest(url, ['GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n']);
    const problem = problemOf(noHost.response);
    expect(problem.status).toBe(400);
    expect(problem.type).toMatch(/^application\/problem\+json/);
    expect(problem.body).toMatchObject({
      code: 'bad_request',
      detail: expect.stringMatching(/Host/),
    });
    const garbled = await rawRequest(url, ['GET / HTTP/1.1\r\nHo st: x\r\n\r\n']);
    expect(problemOf(garbled.response)).toMatchObject({
      status: 400,
      body: { code: 'bad_request' },
    });
  });
});
