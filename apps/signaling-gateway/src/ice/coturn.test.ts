import { createHmac } from 'node:crypto';
import { coturnCredential } from '@streamanchor/service-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Coturn, startCoturn, turnAllocate } from '../../test/coturn';
import { startGateway } from '../../test/support';
import { createCoturnProvider, turnUserId } from './providers';

const SECRET = 'coturn-test-secret-0123456789';
const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);

describe('coturn provider', () => {
  it('default: username expiry:subject, credential base64(HMAC-SHA1(secret, username))', async () => {
    const provider = createCoturnProvider({
      secret: SECRET,
      urls: ['turn:turn.example.net:3478?transport=udp', 'turns:turn.example.net:5349'],
      ttlS: 600,
      now: () => NOW,
    });
    const servers = await provider.iceServers({ subject: 'alice' });
    const expiry = NOW / 1000 + 600;
    expect(servers).toEqual([
      {
        urls: ['turn:turn.example.net:3478?transport=udp', 'turns:turn.example.net:5349'],
        username: `${expiry}:alice`,
        credential: createHmac('sha1', SECRET).update(`${expiry}:alice`).digest('base64'),
      },
    ]);
    // A known vector (computed with openssl dgst -sha1 -hmac … -binary | base64).
    expect(coturnCredential('s3cr3t-0123456789', 1796543290, 'alice').credential).toBe(
      'uqTNsa+eyc5QRkKtgrtSfn/pCO4=',
    );
    expect(provider.credentialsIssued).toBe(1);
  });

  it('behavior: credentials are per request, never outlive notAfter, and follow the clock', async () => {
    let now = NOW;
    const provider = createCoturnProvider({
      secret: SECRET,
      urls: ['turn:127.0.0.1:3478'],
      ttlS: 3600,
      stun: [{ urls: ['stun:stun.example.net:3478'] }],
      now: () => now,
    });
    const [stun, first] = await provider.iceServers({ subject: 'bob', notAfter: NOW + 90_500 });
    expect(stun).toEqual({ urls: ['stun:stun.example.net:3478'] });
    expect(first?.username).toBe(`${NOW / 1000 + 90}:bob`);
    now += 10_000;
    const [, second] = await provider.iceServers({ subject: 'bob' });
    expect(second?.username).toBe(`${NOW / 1000 + 10 + 3600}:bob`);
    expect(second?.credential).not.toBe(first?.credential);
    expect(provider.credentialsIssued).toBe(2);
  });

  it('behavior: a subject unfit for a username is replaced by its digest', () => {
    expect(turnUserId('alice@example.com')).toBe('alice@example.com');
    for (const subject of ['a:b', 'quote"d', 'ålice', 'x'.repeat(129)]) {
      expect(turnUserId(subject)).toMatch(/^sha256-[A-Za-z0-9_-]{22}$/);
    }
    expect(turnUserId('a:b')).not.toBe(turnUserId('a:c'));
  });
});

// A REAL coturn (turnserver) with use-auth-secret: the provider's credentials allocate a
// relayed address, and coturn itself refuses them once their expiry has passed.
describe('coturn provider against turnserver', () => {
  let coturn: Coturn;
  beforeAll(async () => {
    coturn = await startCoturn({ secret: SECRET });
  });
  afterAll(async () => {
    await coturn?.close();
  });

  it('default: credentials from the provider allocate a TURN relay', async () => {
    const provider = createCoturnProvider({
      secret: SECRET,
      urls: [`turn:127.0.0.1:${coturn.port}?transport=udp`],
      ttlS: 600,
    });
    const [server] = await provider.iceServers({ subject: 'alice' });
    const result = await turnAllocate({
      port: coturn.port,
      username: server!.username!,
      credential: server!.credential!,
    });
    expect(result, coturn.log()).toMatchObject({ ok: true });
    if (result.ok) expect(result.relayedPort).toBeGreaterThan(0);
  });

  it('behavior: credentials from the gateway Link headers (OPTIONS with a token) allocate', async () => {
    const gateway = await startGateway({
      ICE_PROVIDER: 'coturn',
      TURN_URLS: `turn:127.0.0.1:${coturn.port}?transport=udp`,
      TURN_SECRET: SECRET,
    });
    try {
      const options = await gateway.app.fastify.inject({
        method: 'OPTIONS',
        url: '/v1/sessions',
        headers: { authorization: `Bearer ${await gateway.token({ subject: 'carol' })}` },
      });
      const link = String(options.headers.link);
      const [, username, credential] = /username="([^"]+)"; credential="([^"]+)"/.exec(link) ?? [];
      expect(username).toMatch(/^\d+:carol$/);
      const result = await turnAllocate({
        port: coturn.port,
        username: username!,
        credential: credential!,
      });
      expect(result, coturn.log()).toMatchObject({ ok: true });
    } finally {
      await gateway.close();
    }
  });

  it('error: expired credentials are refused (401)', async () => {
    // Issued by a clock 700 s behind: a 600 s credential that expired 100 s ago.
    const provider = createCoturnProvider({
      secret: SECRET,
      urls: [`turn:127.0.0.1:${coturn.port}?transport=udp`],
      ttlS: 600,
      now: () => Date.now() - 700_000,
    });
    const [server] = await provider.iceServers({ subject: 'alice' });
    const result = await turnAllocate({
      port: coturn.port,
      username: server!.username!,
      credential: server!.credential!,
    });
    expect(result).toMatchObject({ ok: false, errorCode: 401 });
  });

  it('error: credentials from another secret are refused (401)', async () => {
    const provider = createCoturnProvider({
      secret: 'another-secret-0123456789',
      urls: [`turn:127.0.0.1:${coturn.port}?transport=udp`],
      ttlS: 600,
    });
    const [server] = await provider.iceServers({ subject: 'alice' });
    const result = await turnAllocate({
      port: coturn.port,
      username: server!.username!,
      credential: server!.credential!,
    });
    expect(result).toMatchObject({ ok: false, errorCode: 401 });
  });
});
