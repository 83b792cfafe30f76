import { randomBytes } from 'node:crypto';
import type { Logger } from '@streamanchor/service-kit';
import type { Redis } from 'ioredis';

export interface SignerLock {
  /** True while this process owns the signer's nonce; acquires or refreshes the lock as needed. */
  ensure(): Promise<boolean>;
  release(): Promise<void>;
  readonly token: string;
}

const REFRESH = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * One nonce owner per signer key: a Redis lock (SET NX PX, refreshed by its owner) that the
 * submitter holds while it works. A second writer with the same key stands by until the
 * owner stops or its lock expires (`ttlMs` after a crash).
 */
export function createSignerLock({
  redis,
  key,
  logger,
  ttlMs = 15_000,
}: {
  redis: Redis;
  key: string;
  logger: Logger;
  ttlMs?: number;
}): SignerLock {
  const token = `${process.pid}-${randomBytes(6).toString('hex')}`;
  let held = false;
  let checkedAt = 0;
  let warned = false;
  return {
    token,
    async ensure() {
      const now = Date.now();
      if (held && now - checkedAt < ttlMs / 3) return true;
      if (held) {
        held = (await redis.eval(REFRESH, 1, key, token, String(ttlMs))) === 1;
        if (!held) logger.error({ key }, 'lost the signer lock; standing by');
      } else {
        held = (await redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK';
        if (held) logger.info({ key }, 'signer lock acquired: this writer owns the nonce');
        else if (!warned) {
          warned = true;
          logger.warn(
            { key, holder: await redis.get(key) },
            'another writer owns this signer; standing by',
          );
        }
      }
      checkedAt = now;
      return held;
    },
    async release() {
      if (!held) return;
      held = false;
      await redis.eval(RELEASE, 1, key, token);
    },
  };
}
