import { randomBytes } from 'node:crypto';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  type BusDeps,
  createQueue,
  createQueueEvents,
  jobIds,
  RequestTimeoutError,
  requestReply,
  type TypedQueue,
} from '@streamanchor/bus';
import { BaseError, LookupReceiptResult } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { QueueEvents } from 'bullmq';

export interface IndexerClientOptions {
  bus: BusDeps;
  /** How long one lookup waits for the indexer (ms), including getting the queue ready. */
  timeoutMs: number;
  logger: Logger;
}

/** The indexer answered something that is not a LookupReceiptResult. */
export class InvalidLookupResultError extends BaseError<{ recordId: string; errors: string[] }> {
  override name = 'InvalidLookupResultError';
  constructor(details: { recordId: string; errors: string[] }) {
    super('The indexer answered a lookup with an unexpected shape', {
      details,
      message: `lookupReceipt ${details.recordId}: unexpected result (${details.errors.join('; ')})`,
    });
  }
}

const resultCheck = TypeCompiler.Compile(LookupReceiptResult);

/**
 * Request/reply to the chain-indexer over the `indexerLookup` queue: the gateway has no
 * database, the indexer does. One Queue and one QueueEvents, opened on first use (a failed
 * open is retried by the next lookup) and closed by close(). Every lookup gets its own job
 * id (a read is never deduplicated); the job is removed on timeout and expires once done.
 */
export function createIndexerClient({ bus, timeoutMs, logger }: IndexerClientOptions) {
  let opened: Promise<{ queue: TypedQueue<'indexerLookup'>; events: QueueEvents }> | undefined;
  let closed = false;

  function open() {
    const queue = createQueue(bus, 'indexerLookup');
    const events = createQueueEvents(bus, 'indexerLookup');
    queue.on('error', (err) => logger.warn({ err }, 'indexer lookup queue error'));
    events.on('error', (err) => logger.warn({ err }, 'indexer lookup events error'));
    const ready = (async () => {
      await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
      return { queue, events };
    })();
    ready.catch(() => {
      if (opened === ready) opened = undefined;
      void Promise.allSettled([events.close(), queue.close()]);
    });
    return ready;
  }

  return {
    /** Where one record stands; throws RequestTimeoutError when the indexer does not answer. */
    async lookupReceipt(recordId: `0x${string}`): Promise<LookupReceiptResult> {
      if (closed) throw new Error('indexer client is closed');
      opened ??= open();
      let timer: NodeJS.Timeout | undefined;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new RequestTimeoutError('lookupReceipt', timeoutMs)),
            timeoutMs,
          );
        });
        const { queue, events } = await Promise.race([opened, timeout]);
        clearTimeout(timer);
        const result: unknown = await requestReply(
          queue,
          events,
          'lookupReceipt',
          { recordId },
          {
            jobId: jobIds.lookupReceipt(recordId, randomBytes(6).toString('hex')),
            timeoutMs,
          },
        );
        if (!resultCheck.Check(result)) {
          throw new InvalidLookupResultError({
            recordId,
            errors: [...resultCheck.Errors(result)]
              .slice(0, 3)
              .map((e) => `${e.path || '/'}: ${e.message}`),
          });
        }
        return result;
      } finally {
        clearTimeout(timer);
      }
    },
    async close(): Promise<void> {
      closed = true;
      const current = opened;
      opened = undefined;
      if (!current) return;
      await current
        .then(({ queue, events }) => Promise.allSettled([events.close(), queue.close()]))
        .catch(() => {});
    },
  };
}
export type IndexerClient = ReturnType<typeof createIndexerClient>;
