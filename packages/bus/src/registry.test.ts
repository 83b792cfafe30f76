import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createKeys, type Keys } from './keys';
import { createRelayRegistry, type RelayRegistry } from './registry';

let redis: Redis;
let keys: Keys;
let registry: RelayRegistry;

beforeEach(() => {
  redis = new Redis(TEST_REDIS_URL);
  keys = createKeys(testRedisPrefix('registry'));
  registry = createRelayRegistry({ redis, keys });
});

afterEach(async () => {
  await deleteRedisPrefix(keys.prefix);
  redis.disconnect();
});

describe('relay registry', () => {
  test('default: live relays, least loaded first', async () => {
    const now = Date.now();
    await registry.heartbeat({ relayId: 'a', sessions: 5, startedAt: 1 }, 10_000, now);
    await registry.heartbeat({ relayId: 'b', sessions: 2, startedAt: 2 }, 10_000, now);
    const live = await registry.live(5_000, now);
    expect(live.map((relay) => [relay.relayId, relay.sessions])).toEqual([
      ['b', 2],
      ['a', 5],
    ]);
  });

  test('behavior: a relay whose heartbeat is stale is not live', async () => {
    const now = Date.now();
    await registry.heartbeat({ relayId: 'old', sessions: 0, startedAt: 1 }, 60_000, now - 10_000);
    await registry.heartbeat({ relayId: 'new', sessions: 9, startedAt: 1 }, 60_000, now);
    expect((await registry.live(5_000, now)).map((relay) => relay.relayId)).toEqual(['new']);
  });

  test('behavior: a draining relay is live and says so; the next heartbeat without the flag clears it', async () => {
    const now = Date.now();
    await registry.heartbeat(
      { relayId: 'a', sessions: 3, startedAt: 1, draining: true },
      10_000,
      now,
    );
    await registry.heartbeat({ relayId: 'b', sessions: 4, startedAt: 1 }, 10_000, now);
    expect(
      (await registry.live(5_000, now)).map((relay) => [relay.relayId, relay.draining]),
    ).toEqual([
      ['a', true],
      ['b', false],
    ]);
    await registry.heartbeat({ relayId: 'a', sessions: 3, startedAt: 1 }, 10_000, now);
    expect((await registry.live(5_000, now))[0]).toMatchObject({ relayId: 'a', draining: false });
  });

  test('behavior: a removed relay is not live', async () => {
    await registry.heartbeat({ relayId: 'a', sessions: 0, startedAt: 1 }, 10_000);
    await registry.remove('a');
    expect(await registry.live(5_000)).toEqual([]);
  });

  test('behavior: session routes are stored, refreshed, deleted', async () => {
    await registry.setSession('s1', { relayId: 'a', subject: 'alice' }, 1_000);
    expect(await registry.getSession('s1')).toEqual({ relayId: 'a', subject: 'alice' });
    await registry.refreshSessions(['s1'], 60_000);
    expect(await redis.pttl(keys.session('s1'))).toBeGreaterThan(1_000);
    await registry.deleteSession('s1');
    expect(await registry.getSession('s1')).toBeUndefined();
  });

  test('behavior: live sessions are counted per subject; delete and expiry take them off', async () => {
    const now = Date.now();
    expect(await registry.reserveSession('alice', 's1', 2, 10_000, now)).toEqual({
      reserved: true,
      live: 0,
    });
    await registry.setSession('s1', { relayId: 'r', subject: 'alice' }, 10_000, now);
    await registry.setSession('s2', { relayId: 'r', subject: 'alice' }, 10_000, now);
    await registry.setSession('s3', { relayId: 'r', subject: 'bob' }, 10_000, now);
    expect(await registry.countSessions('alice', now)).toBe(2);
    expect(await registry.reserveSession('alice', 's4', 2, 10_000, now)).toEqual({
      reserved: false,
      live: 2,
    });
    await registry.deleteSession('s1');
    expect(await registry.countSessions('alice', now)).toBe(1);
    // Refreshing (the relay's heartbeat) extends what is still routed, and revives nothing.
    await registry.refreshSessions(['s2', 's1'], 60_000, now);
    expect(await registry.countSessions('alice', now + 30_000)).toBe(1);
    expect(await registry.countSessions('bob', now + 30_000)).toBe(0);
    // A relay that crashed never refreshes: its sessions stop counting after the TTL.
    expect(await registry.reserveSession('bob', 's5', 1, 1_000, now + 30_000)).toEqual({
      reserved: true,
      live: 0,
    });
    await registry.releaseSession('bob', 's5');
    expect(await registry.countSessions('bob', now + 30_000)).toBe(0);
    // A suspended subject reserves nothing and learns how long the suspension has left.
    await registry.suspendSubject('carol', 5_000);
    const suspended = await registry.reserveSession('carol', 's7', 5, 10_000, now);
    expect(suspended).toEqual({ reserved: false, suspendedMs: expect.any(Number) });
    expect(suspended.suspendedMs).toBeGreaterThan(4_000);
    expect(suspended.suspendedMs).toBeLessThanOrEqual(5_000);
    expect(await registry.countSessions('carol', now)).toBe(0);
    // Subjects with any characters map to distinct keys under the prefix.
    await registry.setSession('s6', { relayId: 'r', subject: 'a:b*c' }, 10_000, now);
    expect(await registry.countSessions('a:b*c', now)).toBe(1);
    expect(await registry.countSessions('a', now)).toBe(0);
  });
});
