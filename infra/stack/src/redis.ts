import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { redactUrl } from '@streamanchor/bus';
import { getFreePort, stopChild } from '@streamanchor/testing';
import { Redis } from 'ioredis';
import { StackError } from './errors';

export const DEFAULT_LOCAL_REDIS_URL = 'redis://127.0.0.1:6379';

export const REDIS_MISSING_MESSAGE =
  'Redis is required: install it (Debian/Ubuntu: sudo apt-get install -y redis-server) or set REDIS_URL';

export interface RedisHandle {
  url: string;
  /** How we got it, for the start-up summary. */
  origin: 'REDIS_URL' | 'local' | 'started';
  /** The redis-server child, when the stack started one. */
  process?: ChildProcess;
  stop(): Promise<void>;
}

/** PING with a short deadline and no retries; resolves to the error message on failure. */
export async function pingRedis(url: string, timeoutMs = 2000): Promise<string | undefined> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const reply = await Promise.race([
      redis.ping(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no PONG within ${timeoutMs} ms`)), timeoutMs).unref(),
      ),
    ]);
    return reply === 'PONG' ? undefined : `unexpected reply ${reply}`;
  } catch (error) {
    return (error as Error).message || String(error);
  } finally {
    redis.disconnect();
  }
}

export function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * REDIS_URL when set (it must answer); else a Redis on 127.0.0.1:6379; else a
 * throwaway redis-server child (nothing kept on disk); else a clear error.
 */
export async function ensureRedis(
  redisUrl: string | undefined,
  {
    localUrl = DEFAULT_LOCAL_REDIS_URL,
    redisServer = 'redis-server',
  }: { localUrl?: string; redisServer?: string } = {},
): Promise<RedisHandle> {
  if (redisUrl) {
    const problem = await pingRedis(redisUrl);
    if (problem) {
      throw new StackError(`REDIS_URL: Redis at ${redactUrl(redisUrl)} is not reachable`, problem);
    }
    return { url: redisUrl, origin: 'REDIS_URL', stop: async () => {} };
  }
  if ((await pingRedis(localUrl, 1000)) === undefined) {
    return { url: localUrl, origin: 'local', stop: async () => {} };
  }
  if (!onPath(redisServer)) throw new StackError(REDIS_MISSING_MESSAGE, '');
  const port = await getFreePort();
  const child = spawn(
    redisServer,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    // Own process group: a terminal's Ctrl-C reaches only the stack, which stops it last.
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new StackError('redis-server exited at start', output);
    if ((await pingRedis(url, 500)) === undefined) break;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new StackError('redis-server did not answer within 10 s', output);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, origin: 'started', process: child, stop: () => stopChild(child) };
}

/** Deletes every key under `${prefix}:` (SCAN, never KEYS). */
export async function clearRedisPrefix(url: string, prefix: string): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}
