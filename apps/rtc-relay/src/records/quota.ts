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
 * lives while a session of its subject does (acquire on open, release on close).
 */
export interface SubjectQuotas {
  acquire(subject: string): TokenBucket;
  release(subject: string): void;
  /** Subjects holding a bucket now. */
  readonly size: number;
}

export function createSubjectQuotas(options: QuotaOptions): SubjectQuotas {
  const buckets = new Map<string, { bucket: TokenBucket; holders: number }>();
  return {
    acquire(subject) {
      let entry = buckets.get(subject);
      if (!entry) {
        entry = { bucket: createTokenBucket(options), holders: 0 };
        buckets.set(subject, entry);
      }
      entry.holders += 1;
      return entry.bucket;
    },
    release(subject) {
      const entry = buckets.get(subject);
      if (!entry) return;
      entry.holders -= 1;
      if (entry.holders <= 0) buckets.delete(subject);
    },
    get size() {
      return buckets.size;
    },
  };
}
