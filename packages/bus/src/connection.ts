import { Redis } from 'ioredis';

/**
 * An ioredis connection suitable for BullMQ (workers need `maxRetriesPerRequest: null`
 * so blocking commands are never cut off).
 */
export function createRedisConnection(url: string, name?: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, connectionName: name, lazyConnect: false });
}

/** Fails fast with a readable message when Redis is not reachable at start-up. */
export async function assertRedisReachable(
  redis: Redis,
  url: string,
  timeoutMs = 3000,
): Promise<void> {
  const timer = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error(`Redis at ${redactUrl(url)} did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    ).unref(),
  );
  await Promise.race([redis.ping(), timer]);
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable url)';
  }
}
