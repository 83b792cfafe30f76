import { RemoteError } from '@streamanchor/bus';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  expectProblem,
  type FakeRelay,
  OFFER_SDP,
  startFakeRelay,
  startGateway,
  TEST_SECRET,
  type TestGateway,
} from '../../test/support';
import { CLOCK_TOLERANCE_SECONDS, mintToken, TokenError, verifyToken } from './index';

const key = new TextEncoder().encode(TEST_SECRET);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('mintToken / verifyToken', () => {
  it('default: a minted token verifies with the same secret and carries its claims', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const token = await mintToken({
      secret: TEST_SECRET,
      subject: 'alice',
      topics: ['demo', '*'],
      ttlSeconds: 60,
      now,
    });
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
    const claims = await verifyToken(token, key, new Date(now.getTime() + 30_000));
    expect(claims).toEqual({
      sub: 'alice',
      topics: ['demo', '*'],
      iat: now.getTime() / 1000,
      exp: now.getTime() / 1000 + 60,
    });
  });

  it('behavior: the gateway refuses a token from its exp on (the relay keeps the tolerance)', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const token = await mintToken({
      secret: TEST_SECRET,
      subject: 'alice',
      topics: ['demo'],
      ttlSeconds: 60,
      now,
    });
    const exp = now.getTime() + 60_000;
    await expect(verifyToken(token, key, new Date(exp - 1000))).resolves.toMatchObject({
      sub: 'alice',
    });
    // Within the tolerance after exp: the relay would still take it, the gateway does not, so
    // the relay never refuses a session the gateway let through.
    for (const late of [0, 1000, (CLOCK_TOLERANCE_SECONDS - 1) * 1000, 3600_000]) {
      const result = verifyToken(token, key, new Date(exp + late));
      await expect(result).rejects.toBeInstanceOf(TokenError);
      await expect(result).rejects.toMatchObject({ details: { reason: 'expired' } });
    }
  });

  it('error: another secret, bad topics or a bad ttl are refused', async () => {
    const token = await mintToken({
      secret: TEST_SECRET,
      subject: 'alice',
      topics: ['demo'],
      ttlSeconds: 60,
    });
    await expect(
      verifyToken(token, new TextEncoder().encode(`${TEST_SECRET}-other`)),
    ).rejects.toMatchObject({
      details: { reason: 'invalid_signature' },
    });
    await expect(
      mintToken({ secret: TEST_SECRET, subject: 'a', topics: ['Not A Topic'], ttlSeconds: 60 }),
    ).rejects.toThrow(/invalid topic/);
    await expect(
      mintToken({ secret: TEST_SECRET, subject: 'a', topics: [], ttlSeconds: 60 }),
    ).rejects.toThrow('invalid token claims: grant at least one topic in topics or subscribe');
    await expect(
      mintToken({ secret: TEST_SECRET, subject: 'a', topics: ['demo'], ttlSeconds: 0 }),
    ).rejects.toThrow(RangeError);
  });

  it('behavior: subscribe is its own grant, and a subscribe-only token has empty topics', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const later = new Date(now.getTime() + 30_000);
    const both = await mintToken({
      secret: TEST_SECRET,
      subject: 'alice',
      topics: ['demo'],
      subscribe: ['telemetry', '*'],
      ttlSeconds: 60,
      now,
    });
    await expect(verifyToken(both, key, later)).resolves.toEqual({
      sub: 'alice',
      topics: ['demo'],
      subscribe: ['telemetry', '*'],
      iat: now.getTime() / 1000,
      exp: now.getTime() / 1000 + 60,
    });
    const subscribeOnly = await mintToken({
      secret: TEST_SECRET,
      subject: 'alice',
      topics: [],
      subscribe: ['demo'],
      ttlSeconds: 60,
      now,
    });
    await expect(verifyToken(subscribeOnly, key, later)).resolves.toMatchObject({
      topics: [],
      subscribe: ['demo'],
    });
    // No subscription is no claim at all: the token is the same as before subscribers.
    const publishOnly = await mintToken({
      secret: TEST_SECRET,
      subject: 'alice',
      topics: ['demo'],
      subscribe: [],
      ttlSeconds: 60,
      now,
    });
    expect(await verifyToken(publishOnly, key, later)).not.toHaveProperty('subscribe');
  });

  it('error: a token granting no topic, or a bad subscribe topic, is refused', async () => {
    const mint = (topics: string[], subscribe?: string[]) =>
      mintToken({ secret: TEST_SECRET, subject: 'a', topics, subscribe, ttlSeconds: 60 });
    await expect(mint([], [])).rejects.toThrow(
      'invalid token claims: grant at least one topic in topics or subscribe',
    );
    await expect(mint(['demo'], ['Not A Topic'])).rejects.toThrow(
      /^invalid topic "Not A Topic": topics match/,
    );
    await expect(
      mint(
        ['demo'],
        Array.from({ length: 257 }, (_, i) => `t${i}`),
      ),
    ).rejects.toThrow(/invalid token claims: \/subscribe/);

    const sign = (claims: Record<string, unknown>) =>
      new SignJWT({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60, ...claims })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(key);
    const noGrant = verifyToken(await sign({ topics: [] }), key);
    await expect(noGrant).rejects.toBeInstanceOf(TokenError);
    await expect(noGrant).rejects.toMatchObject({
      details: { reason: 'claims' },
      shortMessage:
        "The token's claims are invalid (it grants no topic: topics and subscribe are both empty or absent)",
    });
    await expect(verifyToken(await sign({ topics: [], subscribe: [] }), key)).rejects.toMatchObject(
      { details: { reason: 'claims' }, shortMessage: expect.stringMatching(/\(\/subscribe: /) },
    );
  });
});

describe('bearer tokens on POST /v1/sessions', () => {
  let gateway: TestGateway;
  let relay: FakeRelay;

  beforeEach(async () => {
    gateway = await startGateway();
    // Stand-in for rtc-relay (see startFakeRelay): it must never be asked for a refused token.
    relay = await startFakeRelay(gateway);
  });
  afterEach(async () => {
    await relay.close();
    await gateway.close();
  });

  const post = (authorization?: string) =>
    gateway.app.fastify.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: {
        'content-type': 'application/sdp',
        ...(authorization === undefined ? {} : { authorization }),
      },
      payload: OFFER_SDP,
    });

  const hs256 = (claims: Record<string, unknown>, secret = TEST_SECRET) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
  const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

  it('default: a valid token opens a session', async () => {
    const response = await post(`Bearer ${await gateway.token()}`);
    expect(response.statusCode).toBe(201);
  });

  it('behavior: a token with subscribe passes both grants to the relay', async () => {
    const token = await gateway.token({ topics: ['demo'], subscribe: ['telemetry', '*'] });
    expect((await post(`Bearer ${token}`)).statusCode).toBe(201);
    expect(relay.jobs[0]?.data).toMatchObject({
      subject: 'alice',
      topics: ['demo'],
      subscribeTopics: ['telemetry', '*'],
    });
  });

  it('behavior: a subscribe-only token (empty topics) opens a session that may only subscribe', async () => {
    const minted = await gateway.token({ topics: [], subscribe: ['demo'] });
    const signed = await hs256({ sub: 'alice', topics: [], subscribe: ['*'], exp: inAnHour() });
    for (const token of [minted, signed]) {
      expect((await post(`Bearer ${token}`)).statusCode).toBe(201);
    }
    expect(relay.jobs.map((job) => job.data)).toMatchObject([
      { topics: [], subscribeTopics: ['demo'] },
      { topics: [], subscribeTopics: ['*'] },
    ]);
  });

  it('error: a token that grants neither publishing nor subscribing is 401 with its detail', async () => {
    const response = await post(
      `Bearer ${await hs256({ sub: 'alice', topics: [], exp: inAnHour() })}`,
    );
    expect(expectProblem(response, 'unauthorized').detail).toBe(
      "The token's claims are invalid (it grants no topic: topics and subscribe are both empty or absent)",
    );
    expect(response.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(relay.jobs).toHaveLength(0);
  });

  it('error: an invalid subscribe claim is 401 naming it', async () => {
    const invalid: Record<string, unknown> = {
      'bad topic': ['UPPER CASE'],
      'empty list': [],
      'not a list': 'demo',
      'too many': Array.from({ length: 257 }, (_, i) => `t${i}`),
    };
    for (const [name, subscribe] of Object.entries(invalid)) {
      const token = await hs256({ sub: 'alice', topics: ['demo'], subscribe, exp: inAnHour() });
      const response = await post(`Bearer ${token}`);
      expect(response.headers['www-authenticate'], name).toBe('Bearer error="invalid_token"');
      expect(expectProblem(response, 'unauthorized').detail, name).toMatch(
        /^The token's claims are invalid \(\/subscribe/,
      );
    }
    expect(relay.jobs).toHaveLength(0);
  });

  it('error: no token is 401 with WWW-Authenticate: Bearer', async () => {
    for (const authorization of [undefined, '', 'Basic YWxpY2U6c2VjcmV0', 'Token abc']) {
      const response = await post(authorization);
      expectProblem(response, 'unauthorized');
      expect(response.headers['www-authenticate'], String(authorization)).toBe('Bearer');
    }
    expect(relay.jobs).toHaveLength(0);
  });

  it('error: a rejected token is 401 with error="invalid_token", and the gateway keeps serving', async () => {
    const now = Math.floor(Date.now() / 1000);
    const { privateKey } = await generateKeyPair('RS256');
    const rsaPublic = await exportJWK((await generateKeyPair('RS256')).publicKey);
    const valid = await gateway.token();
    const [validHeader, validPayload] = valid.split('.');
    const tokens: Record<string, string> = {
      'empty bearer': '',
      garbage: 'not-a-jwt',
      'two parts': 'abc.def',
      'wrong secret': await hs256(
        { sub: 'alice', topics: ['demo'], exp: inAnHour() },
        `${TEST_SECRET}-other`,
      ),
      'tampered payload': `${validHeader}.${b64({ sub: 'root', topics: ['*'], exp: inAnHour() })}.${valid.split('.')[2]}`,
      expired: await mintToken({
        secret: TEST_SECRET,
        subject: 'alice',
        topics: ['demo'],
        ttlSeconds: 60,
        now: new Date(Date.now() - 2 * 3600_000),
      }),
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${validPayload}.`,
      'alg none with signature': `${b64({ alg: 'none' })}.${validPayload}.${valid.split('.')[2]}`,
      'RS256 signed': await new SignJWT({ sub: 'alice', topics: ['demo'], exp: inAnHour() })
        .setProtectedHeader({ alg: 'RS256' })
        .sign(privateKey),
      'RS256 header, HMAC signature': `${b64({ alg: 'RS256', typ: 'JWT', jwk: rsaPublic })}.${validPayload}.${valid.split('.')[2]}`,
      HS384: await new SignJWT({ sub: 'alice', topics: ['demo'], exp: inAnHour() })
        .setProtectedHeader({ alg: 'HS384' })
        .sign(new TextEncoder().encode(TEST_SECRET)),
      'no exp': await hs256({ sub: 'alice', topics: ['demo'] }),
      'not yet valid': await hs256({
        sub: 'alice',
        topics: ['demo'],
        exp: inAnHour(),
        nbf: now + 600,
      }),
      'no sub': await hs256({ topics: ['demo'], exp: inAnHour() }),
      'empty sub': await hs256({ sub: '', topics: ['demo'], exp: inAnHour() }),
      'no topics': await hs256({ sub: 'alice', exp: inAnHour() }),
      'empty topics': await hs256({ sub: 'alice', topics: [], exp: inAnHour() }),
      'topics not a list': await hs256({ sub: 'alice', topics: 'demo', exp: inAnHour() }),
      'bad topic': await hs256({ sub: 'alice', topics: ['UPPER CASE'], exp: inAnHour() }),
      'fractional exp': await hs256({ sub: 'alice', topics: ['demo'], exp: inAnHour() + 0.5 }),
      'huge header': 'x'.repeat(9000),
    };
    for (const [name, token] of Object.entries(tokens)) {
      const response = await post(`Bearer ${token}`);
      const body = expectProblem(response, 'unauthorized');
      expect(response.headers['www-authenticate'], name).toBe('Bearer error="invalid_token"');
      expect(typeof body.detail, name).toBe('string');
      // Still serving everyone else.
      expect((await post(`Bearer ${valid}`)).statusCode, `after ${name}`).toBe(201);
    }
    expect(relay.jobs.every((job) => (job.data as { subject?: string }).subject === 'alice')).toBe(
      true,
    );
    expect(relay.jobs).toHaveLength(Object.keys(tokens).length);
  });

  it('error: the problem says why (expired, algorithm, claims)', async () => {
    const expired = await mintToken({
      secret: TEST_SECRET,
      subject: 'alice',
      topics: ['demo'],
      ttlSeconds: 60,
      now: new Date(Date.now() - 3600_000),
    });
    expect(expectProblem(await post(`Bearer ${expired}`), 'unauthorized').detail).toMatch(
      /expired/,
    );
    const hs384 = await new SignJWT({ sub: 'alice', topics: ['demo'], exp: inAnHour() })
      .setProtectedHeader({ alg: 'HS384' })
      .sign(new TextEncoder().encode(TEST_SECRET));
    expect(expectProblem(await post(`Bearer ${hs384}`), 'unauthorized').detail).toMatch(/HS256/);
    const noTopics = await hs256({ sub: 'alice', exp: inAnHour() });
    expect(expectProblem(await post(`Bearer ${noTopics}`), 'unauthorized').detail).toMatch(
      /claims/,
    );
  });
});

describe('token boundaries on POST /v1/sessions (aud, iss, iat, lifetime, expiry, sub)', () => {
  let gateway: TestGateway;
  let relay: FakeRelay;

  beforeEach(async () => {
    gateway = await startGateway({
      JWT_AUDIENCE: 'streamanchor-test',
      JWT_ISSUER: 'https://issuer.test',
      MAX_TOKEN_TTL_SECONDS: '3600',
    });
    relay = await startFakeRelay(gateway);
  });
  afterEach(async () => {
    await relay.close();
    await gateway.close();
  });

  const post = (token: string) =>
    gateway.app.fastify.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
      payload: OFFER_SDP,
    });
  const nowS = () => Math.floor(Date.now() / 1000);
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({
      sub: 'alice',
      topics: ['demo'],
      aud: 'streamanchor-test',
      iss: 'https://issuer.test',
      iat: nowS(),
      exp: nowS() + 600,
      ...claims,
    })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(key);
  const refused = async (token: string, detail: RegExp) => {
    const response = await post(token);
    const body = expectProblem(response, 'unauthorized');
    expect(response.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(body.detail).toMatch(detail);
  };

  it('default: a token with the configured aud and iss opens a session (also minted by mintToken)', async () => {
    expect((await post(await sign({}))).statusCode).toBe(201);
    expect((await post(await sign({ aud: ['other', 'streamanchor-test'] }))).statusCode).toBe(201);
    const minted = await mintToken({
      secret: TEST_SECRET,
      subject: 'alice',
      topics: ['demo'],
      ttlSeconds: 600,
      audience: 'streamanchor-test',
      issuer: 'https://issuer.test',
    });
    expect((await post(minted)).statusCode).toBe(201);
  });

  it('error: a missing or wrong aud or iss is 401', async () => {
    await refused(await sign({ aud: undefined }), /aud/);
    await refused(await sign({ aud: 'someone-else' }), /aud does not name this service/);
    await refused(await sign({ iss: undefined }), /iss/);
    await refused(await sign({ iss: 'https://evil.test' }), /iss is not the accepted issuer/);
    expect(relay.jobs).toHaveLength(0);
  });

  it('error: an iat beyond the clock tolerance in the future is 401', async () => {
    await refused(
      await sign({ iat: nowS() + 365 * 24 * 3600, exp: nowS() + 365 * 24 * 3600 + 60 }),
      /issued in the future/,
    );
    await refused(
      await sign({ iat: nowS() + CLOCK_TOLERANCE_SECONDS + 30 }),
      /issued in the future/,
    );
    expect(relay.jobs).toHaveLength(0);
  });

  it('error: a lifetime beyond MAX_TOKEN_TTL_SECONDS is 401 (exp − iat, or exp − now without iat)', async () => {
    await refused(await sign({ exp: 9_000_000_000_000 }), /lives too long/); // year 30000 and beyond
    await refused(await sign({ exp: nowS() + 3601 }), /at most 3600 s/);
    await refused(await sign({ iat: undefined, exp: nowS() + 7200 }), /lives too long/);
    expect((await post(await sign({ exp: nowS() + 3600 }))).statusCode).toBe(201);
  });

  it('error: a token at or just past its exp (within the tolerance) is a clean 401, never a 500', async () => {
    for (const ago of [0, 1, CLOCK_TOLERANCE_SECONDS - 1]) {
      await refused(await sign({ iat: nowS() - 60, exp: nowS() - ago }), /expired/);
    }
    expect(relay.jobs).toHaveLength(0);
  });

  it('error: a sub with control characters or an unpaired surrogate is 401 with a clear detail', async () => {
    for (const sub of ['ali\u0000ce', 'a\u001fb', 'del\u007f', 'line\nbreak', 'x\ud800y']) {
      await refused(await sign({ sub }), /sub must not contain control characters/);
    }
    expect((await post(await sign({ sub: 'ålice 😀' }))).statusCode).toBe(201);
    expect(relay.jobs).toHaveLength(1);
  });
});

describe('a relay that refuses the token as expired', () => {
  it('error: is a 401 for the client, not a 500', async () => {
    const gateway = await startGateway();
    const relay = await startFakeRelay(gateway, {
      process: async () => {
        // What rtc-relay throws when the token expired before the job ran.
        throw new RemoteError('token_expired', 'the token has already expired');
      },
    });
    try {
      const response = await gateway.app.fastify.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: {
          'content-type': 'application/sdp',
          authorization: `Bearer ${await gateway.token()}`,
        },
        payload: OFFER_SDP,
      });
      expect(expectProblem(response, 'unauthorized').detail).toMatch(/expired/);
      expect(response.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    } finally {
      await relay.close();
      await gateway.close();
    }
  });
});
