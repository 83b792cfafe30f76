import { getFreePort, TEST_REDIS_URL } from '@streamanchor/testing';
import { describe, expect, it } from 'vitest';
import { StackError } from './errors';
import { ensureRedis, pingRedis, REDIS_MISSING_MESSAGE } from './redis';

describe('ensureRedis', () => {
  it('default: uses the Redis that answers locally', async () => {
    const redis = await ensureRedis(undefined, { localUrl: TEST_REDIS_URL });
    expect(redis.origin).toBe('local');
    expect(redis.url).toBe(TEST_REDIS_URL);
  });

  it('behavior: starts a throwaway redis-server when nothing answers, and stops it', async () => {
    const nothing = `redis://127.0.0.1:${await getFreePort()}`;
    const redis = await ensureRedis(undefined, { localUrl: nothing });
    try {
      expect(redis.origin).toBe('started');
      expect(await pingRedis(redis.url)).toBeUndefined();
    } finally {
      await redis.stop();
    }
    expect(await pingRedis(redis.url, 500)).toBeDefined();
  });

  it('error: without redis-server it says what to install', async () => {
    const nothing = `redis://127.0.0.1:${await getFreePort()}`;
    const attempt = ensureRedis(undefined, {
      localUrl: nothing,
      redisServer: 'no-such-redis-server-binary',
    });
    await expect(attempt).rejects.toThrow(StackError);
    await expect(attempt).rejects.toThrow(REDIS_MISSING_MESSAGE);
  });

  it('error: an unreachable REDIS_URL is named', async () => {
    const url = `redis://127.0.0.1:${await getFreePort()}`;
    await expect(ensureRedis(url)).rejects.toThrow(
      /REDIS_URL: Redis at redis:\/\/127\.0\.0\.1:\d+\/? is not reachable/,
    );
  });
});
