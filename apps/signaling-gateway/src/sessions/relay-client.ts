import {
  type BusDeps,
  createQueue,
  createQueueEvents,
  type JobData,
  type JobName,
  type JobResult,
  RequestTimeoutError,
  requestReply,
  type TypedQueue,
} from '@streamanchor/bus';
import type { Logger } from '@streamanchor/service-kit';
import type { QueueEvents } from 'bullmq';

/** A relay's queue and its ready events stream are closed after this long unused. */
const DEFAULT_IDLE_CLOSE_MS = 5 * 60_000;

interface Entry {
  ready: Promise<{ queue: TypedQueue<'relayControl'>; events: QueueEvents }>;
  inFlight: number;
  lastUsed: number;
}

export interface RelayClientOptions {
  bus: BusDeps;
  /** How long one request waits for the relay (ms), including getting the queue ready. */
  timeoutMs: number;
  logger: Logger;
  idleCloseMs?: number;
}

/**
 * Request/reply to relays over their `relayControl` queues. Keeps one Queue and one ready
 * QueueEvents per relay id (opening a QueueEvents costs a Redis connection and a round
 * trip), closes the ones left idle (relay ids change when relays restart) and all on close().
 */
export function createRelayClient({
  bus,
  timeoutMs,
  logger,
  idleCloseMs = DEFAULT_IDLE_CLOSE_MS,
}: RelayClientOptions) {
  const entries = new Map<string, Entry>();
  let closed = false;

  function open(relayId: string): Entry {
    const queue = createQueue(bus, 'relayControl', relayId);
    const events = createQueueEvents(bus, 'relayControl', relayId);
    queue.on('error', (err) => logger.warn({ err, relayId }, 'relay control queue error'));
    events.on('error', (err) => logger.warn({ err, relayId }, 'relay control events error'));
    const entry: Entry = {
      ready: (async () => {
        await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
        return { queue, events };
      })(),
      inFlight: 0,
      lastUsed: Date.now(),
    };
    entry.ready.catch(() => {
      if (entries.get(relayId) === entry) entries.delete(relayId);
      void closeQuietly(queue, events);
    });
    return entry;
  }

  async function closeQuietly(
    queue: TypedQueue<'relayControl'>,
    events: QueueEvents,
  ): Promise<void> {
    await Promise.allSettled([events.close(), queue.close()]);
  }

  function pruneIdle(now: number): void {
    for (const [relayId, entry] of entries) {
      if (entry.inFlight === 0 && now - entry.lastUsed > idleCloseMs) {
        entries.delete(relayId);
        void entry.ready.then(({ queue, events }) => closeQuietly(queue, events)).catch(() => {});
      }
    }
  }

  async function call<N extends JobName<'relayControl'>>(
    relayId: string,
    name: N,
    data: JobData<'relayControl', N>,
    jobId: string,
  ): Promise<JobResult<'relayControl', N>> {
    if (closed) throw new Error('relay client is closed');
    pruneIdle(Date.now());
    let entry = entries.get(relayId);
    if (!entry) {
      entry = open(relayId);
      entries.set(relayId, entry);
    }
    entry.inFlight += 1;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RequestTimeoutError(name, timeoutMs)), timeoutMs);
      });
      const { queue, events } = await Promise.race([entry.ready, timeout]);
      clearTimeout(timer);
      return await requestReply(queue, events, name, data, { jobId, timeoutMs });
    } finally {
      clearTimeout(timer);
      entry.inFlight -= 1;
      entry.lastUsed = Date.now();
    }
  }

  return {
    createSession: (
      relayId: string,
      data: JobData<'relayControl', 'createSession'>,
      jobId: string,
    ) => call(relayId, 'createSession', data, jobId),
    deleteSession: (
      relayId: string,
      data: JobData<'relayControl', 'deleteSession'>,
      jobId: string,
    ) => call(relayId, 'deleteSession', data, jobId),
    trickleSession: (
      relayId: string,
      data: JobData<'relayControl', 'trickleSession'>,
      jobId: string,
    ) => call(relayId, 'trickleSession', data, jobId),
    /** Number of relays with an open queue (for tests and metrics). */
    get openRelays(): number {
      return entries.size;
    },
    async close(): Promise<void> {
      closed = true;
      const all = [...entries.values()];
      entries.clear();
      await Promise.allSettled(
        all.map((entry) => entry.ready.then(({ queue, events }) => closeQuietly(queue, events))),
      );
    },
  };
}
export type RelayClient = ReturnType<typeof createRelayClient>;
