import { createHash } from 'node:crypto';
import type { TokenClaims } from '@streamanchor/protocol';
import type { FastifyRequest } from 'fastify';
import { type CryptoKey, decodeJwt, errors as joseErrors } from 'jose';
import { BoundedCache } from '../bounded-cache';
import { ProblemError } from '../errors';
import { importVerifyKey, TokenError, type VerifyOptions, verifyToken } from './token';

/** Longest Authorization header value worth looking at; real tokens are a few hundred bytes. */
const MAX_AUTHORIZATION_LENGTH = 8192;
/** Verified tokens remembered (each token string is one entry; the oldest goes first). */
export const TOKEN_CACHE_ENTRIES = 10_000;
/**
 * Longest token whose verdict is remembered (real tokens are a few hundred bytes), so that the
 * cache holds at most about TOKEN_CACHE_ENTRIES × this much (it is keyed by the token's SHA-256).
 */
export const TOKEN_CACHE_MAX_TOKEN_LENGTH = 2048;
/** Longest a remembered verdict is used, in ms (a good token's is also cut at its exp). */
export const TOKEN_CACHE_MAX_AGE_MS = 60_000;

export type Authenticate = (request: FastifyRequest) => Promise<TokenClaims>;

export interface AuthenticatorOptions extends Omit<VerifyOptions, 'now'> {
  secret: string;
  /** The clock verdicts are taken and remembered by (tests pass a fake one). */
  clock?: () => Date;
  /** Bounds of the verified-token cache (defaults: TOKEN_CACHE_ENTRIES, TOKEN_CACHE_MAX_AGE_MS). */
  cache?: { maxEntries?: number; maxAgeMs?: number };
}

type Verdict = { claims: TokenClaims } | { error: TokenError };

/**
 * Builds the bearer-token check routes call: returns the token's claims, or throws a
 * 401 problem carrying `WWW-Authenticate: Bearer` (plus error="invalid_token" when a token
 * was presented but rejected, RFC 6750).
 *
 * The secret is imported once (a CryptoKey), and verdicts are remembered per exact token
 * string (by its SHA-256; see verdictUntil for why a remembered verdict is exact), so a client repeating one token, good or bad, costs one
 * verification per TOKEN_CACHE_MAX_AGE_MS, not one per request.
 */
export function createAuthenticator({
  secret,
  clock = () => new Date(),
  cache: { maxEntries = TOKEN_CACHE_ENTRIES, maxAgeMs = TOKEN_CACHE_MAX_AGE_MS } = {},
  ...checks
}: AuthenticatorOptions): Authenticate {
  let key: Promise<CryptoKey> | undefined;
  const verifyKey = () => {
    key ??= importVerifyKey(secret).catch((error: unknown) => {
      key = undefined; // the next request tries again
      throw error;
    });
    return key;
  };
  const verdicts = new BoundedCache<Verdict>(maxEntries);

  const verify = async (token: string): Promise<TokenClaims> => {
    const now = clock();
    const at = now.getTime();
    const cacheKey =
      token.length <= TOKEN_CACHE_MAX_TOKEN_LENGTH
        ? createHash('sha256').update(token).digest('base64url')
        : undefined;
    const known = cacheKey === undefined ? undefined : verdicts.get(cacheKey, at)?.value;
    if (known) {
      if ('claims' in known) return known.claims;
      throw known.error;
    }
    let verdict: Verdict;
    try {
      verdict = { claims: await verifyToken(token, await verifyKey(), { ...checks, now }) };
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      verdict = { error };
    }
    if (cacheKey !== undefined) {
      verdicts.set(cacheKey, verdict, at, Math.min(at + maxAgeMs, verdictUntil(token, verdict)));
    }
    if ('claims' in verdict) return verdict.claims;
    throw verdict.error;
  };

  return async (request) => {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || !/^Bearer(\s|$)/i.test(header)) {
      throw new ProblemError('unauthorized', 'Send Authorization: Bearer <token>', {
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    }
    try {
      const token =
        header.length <= MAX_AUTHORIZATION_LENGTH
          ? /^Bearer +(\S+) *$/i.exec(header)?.[1]
          : undefined;
      if (!token) throw new TokenError('The token is malformed', { reason: 'malformed' });
      return await verify(token);
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      throw new ProblemError('unauthorized', error.shortMessage, {
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
        cause: error,
      });
    }
  };
}

/**
 * Until when (ms, exclusive) the verdict verifyToken gave at some time t0 is still the verdict
 * it would give, for every time from t0 on. Why a remembered verdict is exact:
 * verifyToken reports the first failing check of a fixed sequence (JWS structure, algorithm,
 * signature, claim presence, iss, aud, claim types, nbf, exp, sub, claim shapes, a topic
 * granted, iat, lifetime, expiry). Every check depends only on the token and the authenticator's fixed options, except
 * these time-dependent ones:
 * - nbf, iat in the future, and the lifetime of a token without iat (exp − now) can only go
 *   from failing to passing as time goes on;
 * - the two expiry checks (the gateway's from exp on, jose's from exp + tolerance) can only go
 *   from passing to failing, and never before exp.
 * So before exp nothing that passed at t0 can fail, and a check that failed at t0 and does not
 * depend on time still fails: the first failing check, hence the verdict, stays the same.
 * - A good token: remembered until its exp.
 * - A refusal from the JWS itself (malformed, algorithm, signature): it comes before every
 *   claim check, so it holds for ever (only the cache's max age bounds it).
 * - A refusal for a time-independent claim check (iss, aud, claim types and shapes, a topic
 *   granted, sub, the lifetime exp − iat): remembered until exp, as after exp the expiry may be reported instead.
 * - A refusal from a time-dependent check (nbf, iat in the future, expired, lifetime without
 *   iat): not remembered (0); the next request verifies again.
 */
function verdictUntil(token: string, verdict: Verdict): number {
  const untilExp = () => {
    let exp: unknown;
    try {
      exp = decodeJwt(token).exp;
    } catch {
      return Number.POSITIVE_INFINITY; // cannot happen once the signature verified
    }
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : Number.POSITIVE_INFINITY;
  };
  if ('claims' in verdict) return verdict.claims.exp * 1000;
  const { reason, cause } = verdict.error.details;
  switch (reason) {
    case 'malformed':
    case 'algorithm':
    case 'invalid_signature':
      return Number.POSITIVE_INFINITY;
    case 'audience':
    case 'issuer':
    case 'subject':
      return untilExp();
    case 'claims':
      // jose's nbf check is reported as claims (nbf: check_failed) and may pass later.
      return cause instanceof joseErrors.JWTClaimValidationFailed && cause.claim === 'nbf'
        ? 0
        : untilExp();
    case 'lifetime':
      return hasNumericIat(token) ? untilExp() : 0;
    case 'expired':
    case 'issued_in_future':
      return 0;
    default:
      return 0;
  }
}

function hasNumericIat(token: string): boolean {
  try {
    return typeof decodeJwt(token).iat === 'number';
  } catch {
    return false;
  }
}
