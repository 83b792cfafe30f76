import type { Redis } from 'ioredis';
import type { Keys } from './keys';

export interface RelayInfo {
  relayId: string;
  /** Sessions the relay holds now; the gateway prefers the least loaded. */
  sessions: number;
  startedAt: number;
  heartbeatAt: number;
}

export interface SessionRoute {
  relayId: string;
  subject: string;
}

/**
 * Relays announce themselves with a heartbeat; the gateway picks a live relay for a
 * new session and routes a session's later requests to the relay that holds it.
 */
export function createRelayRegistry({ redis, keys }: { redis: Redis; keys: Keys }) {
  return {
    async heartbeat(
      info: Omit<RelayInfo, 'heartbeatAt'>,
      ttlMs: number,
      now = Date.now(),
    ): Promise<void> {
      await redis
        .multi()
        .zadd(keys.relays, now, info.relayId)
        .hset(keys.relay(info.relayId), {
          relayId: info.relayId,
          sessions: info.sessions,
          startedAt: info.startedAt,
          heartbeatAt: now,
        })
        .pexpire(keys.relay(info.relayId), ttlMs)
        .exec();
    },

    async remove(relayId: string): Promise<void> {
      await redis.multi().zrem(keys.relays, relayId).del(keys.relay(relayId)).exec();
    },

    /** Relays whose last heartbeat is newer than `staleAfterMs`, least loaded first. */
    async live(staleAfterMs: number, now = Date.now()): Promise<RelayInfo[]> {
      await redis.zremrangebyscore(keys.relays, '-inf', now - staleAfterMs * 10);
      const ids = await redis.zrangebyscore(keys.relays, now - staleAfterMs, '+inf');
      if (ids.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hgetall(keys.relay(id));
      const rows = (await pipeline.exec()) ?? [];
      const relays: RelayInfo[] = [];
      for (const [error, row] of rows) {
        const hash = row as Record<string, string> | null;
        if (error || !hash?.relayId) continue;
        relays.push({
          relayId: hash.relayId,
          sessions: Number(hash.sessions ?? 0),
          startedAt: Number(hash.startedAt ?? 0),
          heartbeatAt: Number(hash.heartbeatAt ?? 0),
        });
      }
      return relays.sort((a, b) => a.sessions - b.sessions);
    },

    async setSession(sessionId: string, route: SessionRoute, ttlMs: number): Promise<void> {
      await redis
        .multi()
        .hset(keys.session(sessionId), { ...route })
        .pexpire(keys.session(sessionId), ttlMs)
        .exec();
    },

    async refreshSessions(sessionIds: readonly string[], ttlMs: number): Promise<void> {
      if (sessionIds.length === 0) return;
      const pipeline = redis.pipeline();
      for (const id of sessionIds) pipeline.pexpire(keys.session(id), ttlMs);
      await pipeline.exec();
    },

    async getSession(sessionId: string): Promise<SessionRoute | undefined> {
      const hash = await redis.hgetall(keys.session(sessionId));
      return hash.relayId && hash.subject
        ? { relayId: hash.relayId, subject: hash.subject }
        : undefined;
    },

    async deleteSession(sessionId: string): Promise<void> {
      await redis.del(keys.session(sessionId));
    },
  };
}
export type RelayRegistry = ReturnType<typeof createRelayRegistry>;
