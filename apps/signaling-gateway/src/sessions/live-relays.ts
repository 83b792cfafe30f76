import type { RelayInfo, RelayRegistry } from '@streamanchor/bus';

export interface LiveRelaysOptions {
  registry: Pick<RelayRegistry, 'live'>;
  /** A relay whose last heartbeat is older than this is not live (RELAY_STALE_AFTER_MS). */
  staleAfterMs: number;
  /** How long one read of the registry is reused (RELAY_LIST_CACHE_MS; 0: never). */
  cacheMs: number;
  now?: () => number;
}

export interface LiveRelays {
  /**
   * The live relays taking new sessions (not draining), least loaded first: the registry's
   * answer of at most `cacheMs` ago, or a new read (one at a time: concurrent callers share
   * it). An empty list is never taken from the cache: "no relay" is always the registry's
   * word of now.
   */
  list(): Promise<RelayInfo[]>;
  /**
   * Whether `relayId` is live (draining or not: a draining relay still holds its sessions):
   * a cached yes, else the registry's answer of now.
   */
  isLive(relayId: string): Promise<boolean>;
}

/**
 * The registry's live relays, read at most once per `cacheMs` (three Redis round trips per
 * read, formerly paid by every POST and DELETE). Relays heartbeat every HEARTBEAT_MS (2 s)
 * and their loads are as old as their last heartbeat, so a read reused for a fraction of
 * that picks the same relay the registry would; only a "yes" is reused, so a relay that just
 * registered is found at once, and a relay that just left is at most `cacheMs` longer in
 * the list (it then refuses with `shutting_down`, or the request times out, as it would
 * have for a request sent just before it left).
 */
export function createLiveRelays({
  registry,
  staleAfterMs,
  cacheMs,
  now = Date.now,
}: LiveRelaysOptions): LiveRelays {
  let cached: { relays: RelayInfo[]; at: number } | undefined;
  let reading: Promise<RelayInfo[]> | undefined;

  const read = (): Promise<RelayInfo[]> => {
    reading ??= (async () => {
      try {
        const at = now();
        const relays = await registry.live(staleAfterMs, at);
        cached = relays.length > 0 && cacheMs > 0 ? { relays, at } : undefined;
        return relays;
      } finally {
        reading = undefined;
      }
    })();
    return reading;
  };
  const fresh = () => (cached && now() - cached.at < cacheMs ? cached.relays : undefined);

  // A draining relay (it is stopping) takes no new sessions: it still heartbeats, so that
  // its sessions' DELETEs reach it, but is never placed on. A POST that reached it in the
  // cacheMs before it said so is refused with `shutting_down` (503 no_relay_available).
  const placeable = (relays: RelayInfo[]) => relays.filter((relay) => !relay.draining);

  return {
    async list() {
      const cachedRelays = fresh();
      const candidates = cachedRelays ? placeable(cachedRelays) : [];
      return candidates.length > 0 ? candidates : placeable(await read());
    },
    async isLive(relayId) {
      if (fresh()?.some((relay) => relay.relayId === relayId)) return true;
      return (await read()).some((relay) => relay.relayId === relayId);
    },
  };
}
