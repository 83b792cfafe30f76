/** Rate and burst of a token bucket: `ratePerSecond` tokens are added per second, up to `burst`. */
export interface QuotaOptions {
  /** Sustained records per second; 0 = unlimited. */
  ratePerSecond: number;
  /** Tokens the bucket holds when full (how many records may arrive at once). */
  burst: number;
}

/** A token bucket. Time is a parameter (milliseconds), so tests drive it. */
export interface TokenBucket {
  /** 0 when a token is available at `now`, else the milliseconds until one is. Takes nothing. */
  retryAfter(now: number): number;
  /** Takes one token (call after retryAfter gave 0); false (and nothing taken) if none is there. */
  take(now: number): boolean;
}

/** A bucket that starts full. A clock going backwards adds nothing. */
export function createTokenBucket({ ratePerSecond, burst }: QuotaOptions): TokenBucket {
  if (ratePerSecond <= 0) return { retryAfter: () => 0, take: () => true };
  const capacity = Math.max(1, burst);
  let tokens = capacity;
  let at = Number.NEGATIVE_INFINITY;
  const refill = (now: number) => {
    if (at === Number.NEGATIVE_INFINITY) at = now;
    if (now > at) {
      tokens = Math.min(capacity, tokens + ((now - at) * ratePerSecond) / 1000);
      at = now;
    }
  };
  return {
    retryAfter(now) {
      refill(now);
      return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / ratePerSecond);
    },
    take(now) {
      refill(now);
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
  };
}

/**
 * Takes one token from every bucket, or from none: 0 when taken, else the longest wait
 * (milliseconds) until all of them have one.
 */
export function takeFromAll(buckets: readonly TokenBucket[], now: number): number {
  let wait = 0;
  for (const bucket of buckets) wait = Math.max(wait, bucket.retryAfter(now));
  if (wait > 0) return wait;
  for (const bucket of buckets) bucket.take(now);
  return 0;
}

/**
 * One token bucket per subject, shared by that subject's sessions on this relay. A bucket
 * outlives its last session until it has refilled (burst ÷ rate): a subject that closes its
 * sessions and opens new ones does not get a fresh burst each time.
 */
export interface SubjectQuotas {
  acquire(subject: string): TokenBucket;
  release(subject: string): void;
  /** Subjects holding a bucket now (including released ones still refilling). */
  readonly size: number;
}

export function createSubjectQuotas(
  options: QuotaOptions,
  now: () => number = Date.now,
): SubjectQuotas {
  const buckets = new Map<
    string,
    { bucket: TokenBucket; holders: number; releasedAt: number | undefined }
  >();
  const refillMs =
    options.ratePerSecond > 0 ? (Math.max(1, options.burst) * 1000) / options.ratePerSecond : 0;
  // Drops released buckets that are full again (a new one would be the same).
  const sweep = (at: number) => {
    for (const [subject, entry] of buckets) {
      if (entry.holders <= 0 && at - (entry.releasedAt ?? at) >= refillMs) buckets.delete(subject);
    }
  };
  return {
    acquire(subject) {
      const at = now();
      sweep(at);
      let entry = buckets.get(subject);
      if (!entry) {
        entry = { bucket: createTokenBucket(options), holders: 0, releasedAt: undefined };
        buckets.set(subject, entry);
      }
      entry.holders += 1;
      entry.releasedAt = undefined;
      return entry.bucket;
    },
    release(subject) {
      const at = now();
      const entry = buckets.get(subject);
      if (entry) {
        entry.holders -= 1;
        if (entry.holders <= 0) entry.releasedAt = at;
      }
      sweep(at);
    },
    get size() {
      return buckets.size;
    },
  };
}
