import { createHmac } from 'node:crypto';
import { getFreePort } from '@streamanchor/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  expectProblem,
  OFFER_SDP,
  startFakeRelay,
  startGateway,
  type TestGateway,
} from '../../test/support';
import { CLOCK_TOLERANCE_SECONDS } from '../auth';

const TURN_SECRET = 'gateway-turn-secret-0123456789';
const COTURN_ENV = {
  ICE_PROVIDER: 'coturn',
  TURN_URLS: 'turn:turn.example.net:3478?transport=udp,turns:turn.example.net:5349',
  TURN_SECRET,
  ICE_STUN_URLS: 'stun:stun.example.net:3478',
};
const ORIGIN = 'https://demo.example';

function links(headers: Record<string, unknown>): string[] {
  const link = headers.link;
  if (link === undefined) return [];
  return Array.isArray(link) ? link.map(String) : [String(link)];
}

/** The username and credential of the TURN links (all the same), checked against the secret. */
function turnCredential(values: string[]): { username: string; expiry: number; subject: string } {
  const turn = values.filter((value) => value.startsWith('<turn'));
  expect(turn).toHaveLength(2);
  const match = /username="([^"]+)"; credential="([^"]+)"; credential-type="password"$/.exec(
    turn[0]!,
  );
  expect(match).not.toBeNull();
  const [, username, credential] = match!;
  expect(turn[1]).toContain(`username="${username}"`);
  expect(credential).toBe(createHmac('sha1', TURN_SECRET).update(username!).digest('base64'));
  const [expiry, subject] = username!.split(':');
  return { username: username!, expiry: Number(expiry), subject: subject! };
}

describe('ICE servers in Link headers', () => {
  let gateway: TestGateway;
  afterEach(async () => {
    await gateway.close();
  });

  it('behavior: the ops server counts sessions created, refused by code, and TURN credentials issued', async () => {
    gateway = await startGateway({ ...COTURN_ENV, OPS_PORT: String(await getFreePort()) });
    const relay = await startFakeRelay(gateway);
    try {
      await gateway.app.start();
      const ops = `http://127.0.0.1:${gateway.config.OPS_PORT}`;
      const metric = async (series: string) => {
        const text = await (await fetch(`${ops}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith(`${series} `));
        return line === undefined ? 0 : Number(line.slice(series.length + 1));
      };
      const created = 'streamanchor_gateway_sessions_created_total';
      const refused = 'streamanchor_gateway_sessions_refused_total{code="unauthorized"}';
      const [createdBefore, refusedBefore] = [await metric(created), await metric(refused)];
      const post = (authorization: string) =>
        gateway.app.fastify.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { 'content-type': 'application/sdp', authorization },
          payload: OFFER_SDP,
        });
      const token = await gateway.token({ subject: 'alice' });
      expect((await post(`Bearer ${token}`)).statusCode).toBe(201);
      expect((await post('Bearer not-a-token')).statusCode).toBe(401);
      expect(await metric(created)).toBe(createdBefore + 1);
      expect(await metric(refused)).toBe(refusedBefore + 1);
      expect(await metric('streamanchor_gateway_turn_credentials_issued_total')).toBe(1);
      expect(
        await metric(
          'streamanchor_gateway_http_requests_total{route="/v1/sessions",method="POST",status="201"}',
        ),
      ).toBeGreaterThanOrEqual(1);
      const ready = await fetch(`${ops}/readyz`);
      expect([ready.status, await ready.json()]).toEqual([200, { status: 'ready' }]);
    } finally {
      await relay.close();
    }
  });

  it('default: a 201 carries the STUN list and per-session TURN credentials (coturn)', async () => {
    gateway = await startGateway(COTURN_ENV);
    const relay = await startFakeRelay(gateway);
    try {
      const before = Math.floor(Date.now() / 1000);
      const post = () =>
        gateway.token({ subject: 'alice', ttlSeconds: 120 }).then((token) =>
          gateway.app.fastify.inject({
            method: 'POST',
            url: '/v1/sessions',
            headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
            payload: OFFER_SDP,
          }),
        );
      const created = await post();
      expect(created.statusCode).toBe(201);
      const values = links(created.headers);
      expect(values[0]).toBe('<stun:stun.example.net:3478>; rel="ice-server"');
      expect(values[1]).toMatch(/^<turn:turn\.example\.net:3478\?transport=udp>; rel="ice-server"/);
      expect(values[2]).toMatch(/^<turns:turn\.example\.net:5349>; rel="ice-server"/);
      const { expiry, subject } = turnCredential(values);
      expect(subject).toBe('alice');
      // The token lives 120 s: the credentials expire with the session, not after the 24 h TTL.
      expect(expiry).toBeGreaterThanOrEqual(before + 120);
      expect(expiry).toBeLessThanOrEqual(before + 121 + CLOCK_TOLERANCE_SECONDS);
      expect(created.headers['cache-control']).toBe('no-store');
      expect(gateway.app.iceServers.credentialsIssued).toBe(1);
      await post();
      expect(gateway.app.iceServers.credentialsIssued).toBe(2);
    } finally {
      await relay.close();
    }
  });

  it('behavior: OPTIONS with a bearer token gets them before the offer; CORS exposes Link', async () => {
    gateway = await startGateway({ ...COTURN_ENV, CORS_ORIGINS: ORIGIN });
    const token = await gateway.token({ subject: 'bob' });
    const options = await gateway.app.fastify.inject({
      method: 'OPTIONS',
      url: '/v1/sessions',
      headers: { origin: ORIGIN, authorization: `Bearer ${token}` },
    });
    expect(options.statusCode).toBe(204);
    expect(options.headers['accept-post']).toBe('application/sdp');
    expect(turnCredential(links(options.headers)).subject).toBe('bob');
    expect(options.headers['cache-control']).toBe('no-store');
    expect(options.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(String(options.headers['access-control-expose-headers'])).toContain('Link');
    expect(gateway.app.iceServers.credentialsIssued).toBe(1);
  });

  it('behavior: a preflight or an OPTIONS without Authorization gets no ICE servers', async () => {
    gateway = await startGateway({ ...COTURN_ENV, CORS_ORIGINS: ORIGIN });
    const preflight = await gateway.app.fastify.inject({
      method: 'OPTIONS',
      url: '/v1/sessions',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'OPTIONS',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-headers']).toContain('Authorization');
    expect(preflight.headers.link).toBeUndefined();
    const plain = await gateway.app.fastify.inject({ method: 'OPTIONS', url: '/v1/sessions' });
    expect(plain.statusCode).toBe(204);
    expect(plain.headers.link).toBeUndefined();
    // A preflight never carries Authorization; one that does is still only a preflight.
    const odd = await gateway.app.fastify.inject({
      method: 'OPTIONS',
      url: '/v1/sessions',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'POST',
        authorization: `Bearer ${await gateway.token()}`,
      },
    });
    expect(odd.headers.link).toBeUndefined();
    expect(gateway.app.iceServers.credentialsIssued).toBe(0);
  });

  it('error: OPTIONS with a bad token is 401 unauthorized, without ICE servers', async () => {
    gateway = await startGateway(COTURN_ENV);
    const refused = await gateway.app.fastify.inject({
      method: 'OPTIONS',
      url: '/v1/sessions',
      headers: { authorization: 'Bearer not-a-token' },
    });
    expectProblem(refused, 'unauthorized');
    expect(refused.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(refused.headers.link).toBeUndefined();
    expect(gateway.app.iceServers.credentialsIssued).toBe(0);
  });

  it('error: OPTIONS with a token is rate limited per address, on its own counter', async () => {
    gateway = await startGateway({ ...COTURN_ENV, SESSION_RATE_PER_IP: '2' });
    const token = await gateway.token();
    const ask = () =>
      gateway.app.fastify.inject({
        method: 'OPTIONS',
        url: '/v1/sessions',
        headers: { authorization: `Bearer ${token}` },
      });
    expect((await ask()).statusCode).toBe(204);
    expect((await ask()).statusCode).toBe(204);
    const limited = await ask();
    expectProblem(limited, 'rate_limited');
    expect(limited.headers['retry-after']).toBeDefined();
    // Without a token, OPTIONS mints nothing and is not counted.
    const plain = await gateway.app.fastify.inject({ method: 'OPTIONS', url: '/v1/sessions' });
    expect(plain.statusCode).toBe(204);
  });

  it('behavior: Cloudflare unreachable: signaling goes on with the STUN list only', async () => {
    const closedPort = await getFreePort();
    gateway = await startGateway({
      ICE_PROVIDER: 'cloudflare',
      CLOUDFLARE_TURN_KEY_ID: 'key',
      CLOUDFLARE_TURN_API_TOKEN: 'token',
      CLOUDFLARE_TURN_API_URL: `http://127.0.0.1:${closedPort}/v1`,
      ICE_STUN_URLS: 'stun:stun.example.net:3478',
    });
    const relay = await startFakeRelay(gateway);
    try {
      const created = await gateway.app.fastify.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: {
          'content-type': 'application/sdp',
          authorization: `Bearer ${await gateway.token()}`,
        },
        payload: OFFER_SDP,
      });
      expect(created.statusCode).toBe(201);
      expect(links(created.headers)).toEqual(['<stun:stun.example.net:3478>; rel="ice-server"']);
      expect(gateway.app.iceServers.credentialsIssued).toBe(0);
    } finally {
      await relay.close();
    }
  });

  it('default: ICE_PROVIDER=none announces nothing', async () => {
    gateway = await startGateway();
    const options = await gateway.app.fastify.inject({
      method: 'OPTIONS',
      url: '/v1/sessions',
      headers: { authorization: `Bearer ${await gateway.token()}` },
    });
    expect(options.statusCode).toBe(204);
    expect(options.headers.link).toBeUndefined();
    expect(gateway.app.iceServers.kind).toBe('none');
  });
});
