import { randomBytes } from 'node:crypto';
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  BaseError,
  BatchByIdResult,
  type Hex,
  LookupReceiptResult,
  RecordByIdResult,
  SessionRecordsResult,
  TopicRecordsResult,
} from '@streamanchor/protocol';
import type { QueueEvents } from 'bullmq';
import { type JobName, jobIds } from './queues';
import { RequestTimeoutError, requestReply } from './request-reply';
import { type BusDeps, createQueue, createQueueEvents, type TypedQueue } from './typed';

/** Anything with `warn`: the client logs queue errors and nothing else. */
interface WarnLogger {
  warn(object: object, message: string): void;
}

export interface IndexerClientOptions {
  bus: BusDeps;
  /** How long one request waits for the indexer (ms), including getting the queue ready. */
  timeoutMs: number;
  logger: WarnLogger;
}

/** The indexer answered a request with a value that does not match the request's result schema. */
export class InvalidLookupResultError extends BaseError<{ request: string; errors: string[] }> {
  override name = 'InvalidLookupResultError';
  constructor(details: { request: string; errors: string[] }) {
    super('The indexer answered a lookup with an unexpected shape', {
      details,
      message: `${details.request}: unexpected result (${details.errors.join('; ')})`,
    });
  }
}

export interface IndexerClient {
  /** Where one record stands (GET /v1/records/…/receipt). */
  lookupReceipt(recordId: Hex): Promise<LookupReceiptResult>;
  /** One session's records of one batch, with their proofs, in leaf order. */
  sessionRecords(batchId: Hex, sessionId: string): Promise<SessionRecordsResult>;
  /**
   * A topic's stored records after position `after` (0: from the first), in position order,
   * at most `limit` (1–1000; fewer once their payloads reach 1 MiB), and the topic's head.
   */
  topicRecords(topic: string, after: number, limit: number): Promise<TopicRecordsResult>;
  /** One stored record (GET /v1/records/…), or `{ record: null }`. */
  recordById(recordId: Hex): Promise<RecordByIdResult>;
  /**
   * A batch's anchoring and a page of its leaves with proofs (GET /v1/batches/…): from leaf
   * `from`, at most `limit`, with the payloads of `payloadTopics` only (absent: all).
   */
  batchById(batchId: Hex, page?: BatchPage): Promise<BatchByIdResult>;
  close(): Promise<void>;
}

/** Which leaves of a batch to read, and whose payloads (see BatchByIdRequest). */
export interface BatchPage {
  from?: number;
  limit?: number;
  payloadTopics?: readonly string[];
}

const lookupReceiptCheck = TypeCompiler.Compile(LookupReceiptResult);
const sessionRecordsCheck = TypeCompiler.Compile(SessionRecordsResult);
const topicRecordsCheck = TypeCompiler.Compile(TopicRecordsResult);
const recordByIdCheck = TypeCompiler.Compile(RecordByIdResult);
const batchByIdCheck = TypeCompiler.Compile(BatchByIdResult);

/**
 * Request/reply to the chain-indexer over the `indexerLookup` queue, for the services with no
 * database of their own (the gateway's receipt lookups, a relay's records of a batch). One
 * Queue and one QueueEvents, opened on first use (a failed open is retried by the next
 * request) and closed by close(). Every request gets its own job id (a read is never
 * deduplicated); the job is removed on timeout and expires once done. Requests throw
 * RequestTimeoutError when the indexer does not answer within timeoutMs, RemoteError when it
 * refuses, InvalidLookupResultError when its answer has the wrong shape.
 */
export function createIndexerClient({
  bus,
  timeoutMs,
  logger,
}: IndexerClientOptions): IndexerClient {
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

  async function request<N extends JobName<'indexerLookup'>, S extends TSchema>(
    name: N,
    data: Parameters<typeof requestReply<'indexerLookup', N>>[3],
    jobId: string,
    check: ReturnType<typeof TypeCompiler.Compile<S>>,
  ): Promise<Static<S>> {
    if (closed) throw new Error('indexer client is closed');
    opened ??= open();
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RequestTimeoutError(name, timeoutMs)), timeoutMs);
      });
      const { queue, events } = await Promise.race([opened, timeout]);
      clearTimeout(timer);
      const result: unknown = await requestReply(queue, events, name, data, { jobId, timeoutMs });
      if (!check.Check(result)) {
        throw new InvalidLookupResultError({
          request: `${name} ${JSON.stringify(data)}`,
          errors: [...check.Errors(result)]
            .slice(0, 3)
            .map((e) => `${e.path || '/'}: ${e.message}`),
        });
      }
      return result;
    } finally {
      clearTimeout(timer);
    }
  }

  const nonce = () => randomBytes(6).toString('hex');
  return {
    lookupReceipt(recordId) {
      return request(
        'lookupReceipt',
        { recordId },
        jobIds.lookupReceipt(recordId, nonce()),
        lookupReceiptCheck,
      );
    },
    sessionRecords(batchId, sessionId) {
      return request(
        'sessionRecords',
        { batchId, sessionId },
        jobIds.sessionRecords(batchId, sessionId, nonce()),
        sessionRecordsCheck,
      );
    },
    topicRecords(topic, after, limit) {
      return request(
        'topicRecords',
        { topic, after, limit },
        jobIds.topicRecords(topic, nonce()),
        topicRecordsCheck,
      );
    },
    recordById(recordId) {
      return request(
        'recordById',
        { recordId },
        jobIds.recordById(recordId, nonce()),
        recordByIdCheck,
      );
    },
    batchById(batchId, { from, limit, payloadTopics } = {}) {
      return request(
        'batchById',
        {
          batchId,
          ...(from === undefined ? {} : { from }),
          ...(limit === undefined ? {} : { limit }),
          ...(payloadTopics === undefined ? {} : { payloadTopics: [...payloadTopics] }),
        },
        jobIds.batchById(batchId, nonce()),
        batchByIdCheck,
      );
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
