import type { TokenClaims } from '@streamanchor/protocol';
import type { FastifyRequest } from 'fastify';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { TEST_SECRET } from '../../test/support';
import { ProblemError } from '../errors';
import { CLOCK_TOLERANCE_SECONDS, createAuthenticator, TokenError, verifyToken } from './index';

const key = new TextEncoder().encode(TEST_SECRET);
const T0 = Date.parse('2030-01-01T00:00:00Z');
const S0 = T0 / 1000;
const CHECKS = { maxLifetimeSeconds: 3600, audience: 'gateway', issuer: 'issuer' };

/** A settable clock, as the authenticator and verifyToken see it. */
function fakeClock(start = T0) {
  let now = start;
  return {
    now: () => new Date(now),
    set: (ms: number) => {
      now = ms;
    },
  };
}

function sign(claims: Record<string, unknown>, secret = TEST_SECRET): Promise<string> {
  return new SignJWT({ aud: 'gateway', iss: 'issuer', topics: ['demo'], ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(secret));
}

const request = (token: string) =>
  ({ headers: { authorization: `Bearer ${token}` } }) as unknown as FastifyRequest;

type Outcome = { claims: TokenClaims } | { refused: string; headers: unknown };

async function viaAuthenticator(
  authenticate: ReturnType<typeof createAuthenticator>,
  token: string,
): Promise<Outcome> {
  try {
    return { claims: await authenticate(request(token)) };
  } catch (error) {
    if (!(error instanceof ProblemError) || error.code !== 'unauthorized') throw error;
    return { refused: error.detail ?? '', headers: error.details.headers };
  }
}

async function viaVerifyToken(token: string, now: Date): Promise<Outcome> {
  try {
    return { claims: await verifyToken(token, key, { ...CHECKS, now }) };
  } catch (error) {
    if (!(error instanceof TokenError)) throw error;
    return {
      refused: error.shortMessage,
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    };
  }
}

describe('verified-token cache (createAuthenticator)', () => {
  it('default: a good token is remembered, and still accepted with the same claims', async () => {
    const clock = fakeClock();
    const authenticate = createAuthenticator({ secret: TEST_SECRET, ...CHECKS, clock: clock.now });
    const token = await sign({ sub: 'alice', iat: S0, exp: S0 + 600 });
    const first = await authenticate(request(token));
    expect(first).toEqual(await verifyToken(token, key, { ...CHECKS, now: clock.now() }));
    clock.set(T0 + 30_000);
    const second = await authenticate(request(token));
    // The very object: the second verdict came from the cache.
    expect(second).toBe(first);
    // After the cache's max age it is verified again (same claims, a new object).
    clock.set(T0 + 61_000);
    const third = await authenticate(request(token));
    expect(third).toEqual(first);
    expect(third).not.toBe(first);
  });

  it('error: a bad-signature token is refused twice with the same problem', async () => {
    const authenticate = createAuthenticator({ secret: TEST_SECRET });
    const now = Math.floor(Date.now() / 1000);
    const token = await sign({ sub: 'alice', iat: now, exp: now + 600 }, `${TEST_SECRET}-other`);
    const outcomes = [
      await viaAuthenticator(authenticate, token),
      await viaAuthenticator(authenticate, token),
    ];
    expect(outcomes[0]).toEqual({
      refused: 'The token signature is invalid',
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    });
    expect(outcomes[1]).toEqual(outcomes[0]);
  });

  it('behavior: a token that expires while remembered is refused from its exp on, like verifyToken', async () => {
    const clock = fakeClock();
    const authenticate = createAuthenticator({ secret: TEST_SECRET, ...CHECKS, clock: clock.now });
    const token = await sign({ sub: 'alice', iat: S0, exp: S0 + 20 });
    expect(await viaAuthenticator(authenticate, token)).toHaveProperty('claims.sub', 'alice');
    for (const ms of [
      T0 + 19_999,
      T0 + 20_000,
      T0 + 20_001,
      T0 + (20 + CLOCK_TOLERANCE_SECONDS) * 1000,
      T0 + (21 + CLOCK_TOLERANCE_SECONDS) * 1000,
    ]) {
      clock.set(ms);
      const outcome = await viaAuthenticator(authenticate, token);
      expect(outcome, `at exp ${(ms - T0) / 1000 - 20} s`).toEqual(await viaTokenAt(token, ms));
      if (ms >= T0 + 20_000) expect(outcome).toMatchObject({ refused: 'The token has expired' });
    }
  });

  it('behavior: time-dependent refusals are not remembered; every verdict equals verifyToken at every time', async () => {
    const clock = fakeClock();
    const authenticate = createAuthenticator({ secret: TEST_SECRET, ...CHECKS, clock: clock.now });
    const late = S0 + CLOCK_TOLERANCE_SECONDS + 30;
    const tokens = {
      good: await sign({ sub: 'alice', iat: S0, exp: S0 + 120 }),
      'not before': await sign({ sub: 'alice', iat: S0, nbf: late, exp: S0 + 600 }),
      'issued in future': await sign({ sub: 'alice', iat: late, exp: late + 600 }),
      // exp − now without iat: too long now, within the limit 10 minutes on.
      'long without iat': await sign({ sub: 'alice', exp: S0 + 3600 + 300 }),
      'long with iat': await sign({ sub: 'alice', iat: S0, exp: S0 + 3601 }),
      'control character sub': await sign({ sub: 'a\u0000b', iat: S0, exp: S0 + 120 }),
      'wrong aud': await sign({ sub: 'alice', aud: 'other', iat: S0, exp: S0 + 120 }),
      'bad topics': await sign({ sub: 'alice', topics: ['Not A Topic'], iat: S0, exp: S0 + 120 }),
      'bad signature': await sign({ sub: 'alice', iat: S0, exp: S0 + 120 }, 'another-secret'),
      malformed: 'x.y.z',
    };
    for (const seconds of [0, 1, 29, 31, 59, 61, 119, 120, 125, 200, 400, 700]) {
      clock.set(T0 + seconds * 1000);
      for (const [name, token] of Object.entries(tokens)) {
        expect(await viaAuthenticator(authenticate, token), `${name} at +${seconds} s`).toEqual(
          await viaTokenAt(token, T0 + seconds * 1000),
        );
      }
    }
  });

  it('behavior: with more tokens than the cache holds, every verdict is still right', async () => {
    const clock = fakeClock();
    const authenticate = createAuthenticator({
      secret: TEST_SECRET,
      ...CHECKS,
      clock: clock.now,
      cache: { maxEntries: 3 },
    });
    const tokens: string[] = [];
    for (let i = 0; i < 10; i++) {
      tokens.push(
        await sign({ sub: `user-${i}`, iat: S0, exp: S0 + 60 + i }, i % 3 ? TEST_SECRET : 'other'),
      );
    }
    for (const seconds of [0, 10, 62, 65, 70]) {
      clock.set(T0 + seconds * 1000);
      for (const token of [...tokens, ...tokens.slice().reverse(), ...tokens]) {
        expect(await viaAuthenticator(authenticate, token)).toEqual(
          await viaTokenAt(token, T0 + seconds * 1000),
        );
      }
    }
  });
});

const viaTokenAt = (token: string, ms: number) => viaVerifyToken(token, new Date(ms));
