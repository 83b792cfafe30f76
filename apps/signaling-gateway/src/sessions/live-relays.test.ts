import { createKeys, createRelayRegistry, type RelayRegistry } from '@streamanchor/bus';
import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLiveRelays } from './live-relays';

let redis: Redis;
let prefix: string;
let registry: RelayRegistry;
/** Reads of the registry the cache made. */
let reads: number;
let clock: number;

const counted = (): Pick<RelayRegistry, 'live'> => ({
  live: (staleAfterMs, now) => {
    reads += 1;
    return registry.live(staleAfterMs, now);
  },
});
const beat = (relayId: string, sessions = 0, draining = false) =>
  registry.heartbeat({ relayId, sessions, startedAt: 1, draining }, 60_000, clock);
const ids = (relays: { relayId: string }[]) => relays.map((relay) => relay.relayId);

describe('live relays', () => {
  beforeEach(() => {
    redis = new Redis(TEST_REDIS_URL);
    prefix = testRedisPrefix('live-relays');
    registry = createRelayRegistry({ redis, keys: createKeys(prefix) });
    reads = 0;
    clock = Date.now();
  });
  afterEach(async () => {
    await deleteRedisPrefix(prefix);
    redis.disconnect();
  });

  it('default: one read of the registry serves every request within cacheMs', async () => {
    await beat('relay-a', 3);
    await beat('relay-b', 1);
    const live = createLiveRelays({
      registry: counted(),
      staleAfterMs: 6000,
      cacheMs: 500,
      now: () => clock,
    });
    const [first, second] = await Promise.all([live.list(), live.list()]);
    expect(ids(first)).toEqual(['relay-b', 'relay-a']);
    expect(second).toEqual(first);
    expect(await live.isLive('relay-a')).toBe(true);
    expect(reads).toBe(1);

    // Past cacheMs the registry is read again, and a relay that left is gone.
    await registry.remove('relay-b');
    clock += 500;
    expect(ids(await live.list())).toEqual(['relay-a']);
    expect(reads).toBe(2);
  });

  it('behavior: "no relay" is never cached: a relay that registers next is found at once', async () => {
    const live = createLiveRelays({
      registry: counted(),
      staleAfterMs: 6000,
      cacheMs: 60_000,
      now: () => clock,
    });
    expect(await live.list()).toEqual([]);
    await beat('relay-new');
    expect(ids(await live.list())).toEqual(['relay-new']);
    expect(reads).toBe(2);
  });

  it('behavior: a relay missing from the cached list is looked up again before it counts as gone', async () => {
    await beat('relay-a');
    const live = createLiveRelays({
      registry: counted(),
      staleAfterMs: 6000,
      cacheMs: 60_000,
      now: () => clock,
    });
    expect(ids(await live.list())).toEqual(['relay-a']);
    await beat('relay-b');
    expect(await live.isLive('relay-b')).toBe(true);
    expect(await live.isLive('relay-gone')).toBe(false);
    expect(reads).toBe(3);
  });

  it('behavior: a draining relay gets no new sessions but stays live for its sessions', async () => {
    await beat('relay-a', 0, true);
    await beat('relay-b', 9);
    const live = createLiveRelays({
      registry: counted(),
      staleAfterMs: 6000,
      cacheMs: 60_000,
      now: () => clock,
    });
    expect(ids(await live.list())).toEqual(['relay-b']);
    expect(await live.isLive('relay-a')).toBe(true);

    // Every relay draining (read once the cache is stale): no relay to place on, and that
    // answer is never taken from the cache.
    clock += 60_000;
    await beat('relay-a', 0, true);
    await beat('relay-b', 9, true);
    expect(await live.list()).toEqual([]);
    expect(await live.list()).toEqual([]);
    expect(reads).toBe(3);
    expect(await live.isLive('relay-b')).toBe(true);
  });

  it('behavior: cacheMs 0 reads the registry for every request', async () => {
    await beat('relay-a');
    const live = createLiveRelays({ registry: counted(), staleAfterMs: 6000, cacheMs: 0 });
    await live.list();
    await live.list();
    expect(reads).toBe(2);
  });
});
