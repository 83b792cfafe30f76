import { randomBytes } from 'node:crypto';
import type { AuditEvent } from '@streamanchor/protocol';
import { jobIds } from './queues';
import { type BusDeps, createQueue, type TypedQueue } from './typed';

/** An event as a producer reports it: `eventId` and `at` are filled in when left out. */
export type AuditEventInput = Omit<AuditEvent, 'eventId' | 'at'> &
  Partial<Pick<AuditEvent, 'eventId' | 'at'>>;

export interface AuditPublisherOptions {
  /** Events per job (default 100): a full buffer is flushed at once. */
  maxEvents?: number;
  /** Longest an event waits in the buffer before its job is added (default 250 ms). */
  flushMs?: number;
  /** Called when adding a job failed (the events stay buffered and are retried next flush). */
  onError?: (error: unknown) => void;
  /** Time source (tests). */
  now?: () => number;
}

export interface AuditPublisher {
  /** Buffers one event (never throws, never waits); returns its event id. */
  record(event: AuditEventInput): string;
  /** Adds the buffered events as `auditEvents` jobs now. */
  flush(): Promise<void>;
  /** Flushes, then closes the queue. */
  close(): Promise<void>;
}

/**
 * Publishes audit events to the writer's `audit` queue, many per job: `record(event)` from
 * the gateway or a relay, and the writer appends them to the audit hash chain. Job ids are
 * deterministic from the first event id, so a retried add never creates a second job, and
 * the writer skips event ids it already appended.
 */
export function createAuditPublisher(
  bus: BusDeps,
  options: AuditPublisherOptions = {},
): AuditPublisher {
  const maxEvents = options.maxEvents ?? 100;
  const flushMs = options.flushMs ?? 250;
  const now = options.now ?? Date.now;
  // Made on the first flush: a process that never audits anything opens no queue (and a
  // BullMQ queue left on a connection that closes rejects in the background).
  let queue: TypedQueue<'audit'> | undefined;
  const queueNow = () => {
    queue ??= createQueue(bus, 'audit');
    return queue;
  };
  let buffer: AuditEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();

  const schedule = () => {
    if (timer || buffer.length === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, flushMs);
    timer.unref?.();
  };

  async function addAll(): Promise<void> {
    while (buffer.length > 0) {
      const events = buffer.slice(0, maxEvents);
      try {
        await queueNow().add(
          'auditEvents',
          { events },
          {
            jobId: jobIds.auditEvents(events[0]!.eventId),
            attempts: 10,
            backoff: { type: 'exponential', delay: 500 },
            removeOnComplete: true,
            removeOnFail: { age: 7 * 24 * 3600 },
          },
        );
      } catch (error) {
        options.onError?.(error);
        schedule();
        return;
      }
      buffer = buffer.slice(events.length);
    }
  }

  function flush(): Promise<void> {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    flushing = flushing.then(addAll);
    return flushing;
  }

  return {
    record(input) {
      const event: AuditEvent = {
        ...input,
        eventId: input.eventId ?? randomBytes(16).toString('base64url'),
        at: input.at ?? now(),
      };
      buffer.push(event);
      if (buffer.length >= maxEvents) void flush();
      else schedule();
      return event.eventId;
    },
    flush,
    async close() {
      await flush();
      await queue?.close();
    },
  };
}
