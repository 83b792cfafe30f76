import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BoundedCache } from './bounded-cache';
import { ProblemError } from './errors';

/** Rate-limit keys remembered as over their limit (per gateway process; the oldest goes first). */
export const RATE_LIMIT_CACHE_ENTRIES = 10_000;

export interface RequestLimitOptions {
  /** Requests allowed per key per window. */
  max: number;
  windowMs: number;
  /**
   * The counter's key. Tag it (`ip:…`, `sub:…`, `history-ip:…`) so that no two limits share a
   * counter: every limit counts in Redis under the same namespace.
   */
  keyOf: (request: FastifyRequest) => string;
  /** What is counted, for the problem's detail: "new sessions", "history reads". */
  counted: string;
  /** Per what: "client address", "subject". */
  per: string;
  /** Called for every refused request (to audit it). */
  onLimited?: (request: FastifyRequest) => void;
  /**
   * Where refusals are remembered; limits of one plugin may share one (their keys differ).
   * Default: a cache of RATE_LIMIT_CACHE_ENTRIES of the limit's own.
   */
  exceeded?: BoundedCache<true>;
}

/**
 * An onRequest hook that counts the request in Redis (@fastify/rate-limit's createRateLimit,
 * so every gateway of a deployment shares the count) and refuses it with a 429 `rate_limited`
 * problem and Retry-After once the key is over `max` in the window.
 *
 * Keys Redis said are over their limit are remembered until their window ends (ms since the
 * epoch). This can only refuse what Redis already refused within the same window: an entry is
 * made only from Redis's own "exceeded" answer and ends when that counter's TTL does, and
 * within a window a counter past its max stays past it (no bans, no backoff). Every gateway
 * still asks Redis (the shared counter) the first time; it only skips the round trip after that.
 */
export function createRequestLimit(
  app: FastifyInstance,
  { max, windowMs, keyOf, counted, per, onLimited, exceeded }: RequestLimitOptions,
): (request: FastifyRequest) => Promise<void> {
  const limiter = app.createRateLimit({ max, timeWindow: windowMs, keyGenerator: keyOf });
  const refused = exceeded ?? new BoundedCache<true>(RATE_LIMIT_CACHE_ENTRIES);
  return async (request) => {
    const key = keyOf(request);
    const now = Date.now();
    let until = refused.get(key, now)?.until;
    if (until === undefined) {
      const result = await limiter(request);
      if (result.isAllowed || !result.isExceeded) return;
      if (result.ttl > 0) {
        until = now + result.ttl;
        refused.set(key, true, now, until);
      }
    }
    onLimited?.(request);
    const retryAfter = Math.max(1, Math.ceil(((until ?? now) - now) / 1000));
    throw new ProblemError(
      'rate_limited',
      `At most ${max} ${counted} per ${per} every ${windowMs / 1000} s; retry in ${retryAfter} s`,
      { headers: { 'Retry-After': String(retryAfter) } },
    );
  };
}
