import type { RelayRegistry } from '@streamanchor/bus';
import type { Logger } from '@streamanchor/service-kit';

export interface Heartbeat {
  /** Beats once (throws if Redis refuses), then every intervalMs. */
  start(): Promise<void>;
  /**
   * Marks the relay draining in the registry at once (the gateway places no new session on
   * it) and in every later beat; it stays live, so that its sessions' requests still reach it.
   */
  drain(): Promise<void>;
  /** Stops beating and removes the relay from the registry. */
  stop(): Promise<void>;
}

/**
 * Announces the relay (TTL 3 × interval) and refreshes the routes of the sessions it
 * holds (TTL sessionTtlMs) on every beat.
 */
export function createHeartbeat({
  registry,
  relayId,
  startedAt,
  intervalMs,
  sessionTtlMs,
  sessionIds,
  logger,
}: {
  registry: RelayRegistry;
  relayId: string;
  startedAt: number;
  intervalMs: number;
  sessionTtlMs: number;
  sessionIds: () => string[];
  logger: Logger;
}): Heartbeat {
  let timer: NodeJS.Timeout | undefined;
  let beating: Promise<void> | undefined;
  let draining = false;

  async function beat(): Promise<void> {
    const ids = sessionIds();
    await Promise.all([
      registry.heartbeat({ relayId, sessions: ids.length, startedAt, draining }, 3 * intervalMs),
      registry.refreshSessions(ids, sessionTtlMs),
    ]);
  }

  return {
    async start() {
      await beat();
      timer = setInterval(() => {
        if (beating) return;
        beating = beat()
          .catch((error: unknown) => logger.warn({ err: error }, 'heartbeat failed'))
          .finally(() => {
            beating = undefined;
          });
      }, intervalMs);
      timer.unref();
    },
    async drain() {
      draining = true;
      // After a beat under way (it wrote draining: false), not alongside it.
      await beating;
      await beat();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await beating;
      await registry.remove(relayId);
    },
  };
}
