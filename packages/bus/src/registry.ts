import type { Redis } from 'ioredis';
import type { Keys } from './keys';

export interface RelayInfo {
  relayId: string;
  /** Sessions the relay holds now; the gateway prefers the least loaded. */
  sessions: number;
  startedAt: number;
  heartbeatAt: number;
  /**
   * The relay is draining before it stops: it takes no new sessions (the gateway places none
   * on it) but still holds its sessions (their DELETEs and receipts still go to it).
   */
  draining: boolean;
}

export interface SessionRoute {
  relayId: string;
  subject: string;
}

/**
 * Reserves one live-session slot for a subject, unless it is suspended or holds `max` already.
 * Input:
 *   KEYS[1]  the subject's sorted set of live sessions (member: session id, score: expiry ms)
 *   KEYS[2]  the subject's suspension (a string key that expires when the suspension ends)
 *   ARGV[1]  now (ms)
 *   ARGV[2]  max live sessions
 *   ARGV[3]  session id
 *   ARGV[4]  expiry of the reservation (ms since the epoch)
 * Output: { 1 (reserved) | 0 (full) | 2 (suspended), live sessions counted before this one
 *   (or, when suspended, the milliseconds the suspension has left) }
 */
const RESERVE_SESSION_2 = `
local suspended = redis.call('PTTL', KEYS[2])
if suspended > 0 then return { 2, suspended } end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local live = redis.call('ZCARD', KEYS[1])
if live >= tonumber(ARGV[2]) then return { 0, live } end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4], 'GT')
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) end
return { 1, live }
`;

/** Sorted set of a subject's live session ids (scored by expiry); expires with the last of them. */
export function subjectSessionsKey(keys: Keys, subject: string): string {
  return `${keys.prefix}:subject-sessions:${Buffer.from(subject, 'utf8').toString('base64url')}`;
}

/** Present while a subject may not open sessions (set by a relay that closed it for abuse). */
export function subjectSuspendedKey(keys: Keys, subject: string): string {
  return `${keys.prefix}:subject-suspended:${Buffer.from(subject, 'utf8').toString('base64url')}`;
}

export type SessionReservation =
  | { reserved: true; live: number; suspendedMs?: undefined }
  | { reserved: false; live: number; suspendedMs?: undefined }
  /** The subject is suspended for `suspendedMs` more milliseconds. */
  | { reserved: false; live?: undefined; suspendedMs: number };

/**
 * Relays announce themselves with a heartbeat; the gateway picks a live relay for a
 * new session and routes a session's later requests to the relay that holds it.
 */
export function createRelayRegistry({ redis, keys }: { redis: Redis; keys: Keys }) {
  return {
    /** Announces (or refreshes) a relay; `draining` defaults to false. */
    async heartbeat(
      info: Omit<RelayInfo, 'heartbeatAt' | 'draining'> & { draining?: boolean },
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
          draining: info.draining ? 1 : 0,
        })
        .pexpire(keys.relay(info.relayId), ttlMs)
        .exec();
    },

    async remove(relayId: string): Promise<void> {
      await redis.multi().zrem(keys.relays, relayId).del(keys.relay(relayId)).exec();
    },

    /**
     * Relays whose last heartbeat is newer than `staleAfterMs`, least loaded first (draining
     * ones included: filter on `draining` to place new sessions).
     */
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
          draining: hash.draining === '1',
        });
      }
      return relays.sort((a, b) => a.sessions - b.sessions);
    },

    /**
     * Writes a session's route, and counts it among its subject's live sessions (both expire
     * after `ttlMs` unless refreshed, so a crashed relay's sessions stop counting).
     */
    async setSession(
      sessionId: string,
      route: SessionRoute,
      ttlMs: number,
      now = Date.now(),
    ): Promise<void> {
      const subjectKey = subjectSessionsKey(keys, route.subject);
      await redis
        .multi()
        .hset(keys.session(sessionId), { ...route })
        .pexpire(keys.session(sessionId), ttlMs)
        .zadd(subjectKey, now + ttlMs, sessionId)
        .pexpire(subjectKey, ttlMs, 'GT')
        .exec();
    },

    /** Extends routes still present (and their subjects' counts); gone ones are not revived. */
    async refreshSessions(
      sessionIds: readonly string[],
      ttlMs: number,
      now = Date.now(),
    ): Promise<void> {
      if (sessionIds.length === 0) return;
      const pipeline = redis.pipeline();
      for (const id of sessionIds) {
        pipeline.pexpire(keys.session(id), ttlMs);
        pipeline.hget(keys.session(id), 'subject');
      }
      const results = (await pipeline.exec()) ?? [];
      const counts = redis.pipeline();
      sessionIds.forEach((id, index) => {
        const subject = results[index * 2 + 1]?.[1];
        if (typeof subject !== 'string') return;
        const subjectKey = subjectSessionsKey(keys, subject);
        counts.zadd(subjectKey, now + ttlMs, id);
        counts.pexpire(subjectKey, ttlMs, 'GT');
      });
      if (counts.length > 0) await counts.exec();
    },

    /**
     * Holds one of `subject`'s `max` live-session slots for `sessionId` until `ttlMs` from
     * now (setSession then keeps it); not reserved when the subject holds `max` already, or
     * is suspended (suspendSubject).
     */
    async reserveSession(
      subject: string,
      sessionId: string,
      max: number,
      ttlMs: number,
      now = Date.now(),
    ): Promise<SessionReservation> {
      const [outcome, figure] = (await redis.eval(
        RESERVE_SESSION_2,
        2,
        subjectSessionsKey(keys, subject),
        subjectSuspendedKey(keys, subject),
        now,
        max,
        sessionId,
        now + ttlMs,
      )) as [number, number];
      if (outcome === 2) return { reserved: false, suspendedMs: figure };
      return outcome === 1 ? { reserved: true, live: figure } : { reserved: false, live: figure };
    },

    /**
     * Keeps `subject` from opening sessions on any gateway for `ms` (a longer suspension
     * already running is kept). Its live sessions are not touched.
     */
    async suspendSubject(subject: string, ms: number): Promise<void> {
      if (ms <= 0) return;
      const key = subjectSuspendedKey(keys, subject);
      // Only lengthens: a shorter suspension never cuts a running longer one short.
      const left = await redis.pttl(key);
      if (left < ms) await redis.set(key, '1', 'PX', ms);
    },

    /** Gives back a slot reserveSession took (the session was not created). */
    async releaseSession(subject: string, sessionId: string): Promise<void> {
      await redis.zrem(subjectSessionsKey(keys, subject), sessionId);
    },

    /** A subject's live sessions (reserved or routed, not expired). */
    async countSessions(subject: string, now = Date.now()): Promise<number> {
      return redis.zcount(subjectSessionsKey(keys, subject), `(${now}`, '+inf');
    },

    async getSession(sessionId: string): Promise<SessionRoute | undefined> {
      const hash = await redis.hgetall(keys.session(sessionId));
      return hash.relayId && hash.subject
        ? { relayId: hash.relayId, subject: hash.subject }
        : undefined;
    },

    /** Removes a session's route and its place in its subject's count. */
    async deleteSession(sessionId: string): Promise<void> {
      const subject = await redis.hget(keys.session(sessionId), 'subject');
      const tx = redis.multi().del(keys.session(sessionId));
      if (subject !== null) tx.zrem(subjectSessionsKey(keys, subject), sessionId);
      await tx.exec();
    },
  };
}
export type RelayRegistry = ReturnType<typeof createRelayRegistry>;
