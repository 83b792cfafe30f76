import {
  type AuditPublisher,
  addRecordBatches,
  type BusDeps,
  createAuditPublisher,
  createIndexerClient,
  createQueue,
  createRelayRegistry,
  type IndexerClient,
  type Keys,
  type TypedQueue,
  type TypedWorker,
} from '@streamanchor/bus';
import { createContentHasher, type NackCode } from '@streamanchor/protocol';
import {
  createOpsServer,
  type Logger,
  type OpsServer,
  registerQueueDepths,
} from '@streamanchor/service-kit';
import type { Redis } from 'ioredis';
import type { Config } from './config';
import { registerRelayMetrics } from './metrics';
import { createReceiptsWorker } from './receipts';
import {
  createRecordPipeline,
  RECORD_JOB_OPTIONS,
  RECORD_JOBS_PER_ADD,
  type RecordPipeline,
  type RecordPipelineStats,
} from './records';
import { createHeartbeat, type Heartbeat } from './registry';
import { createControlWorker, createCounters, SessionManager } from './sessions';
import { createPublicAddress } from './sessions/public-address';
import {
  createSubscriptionHub,
  type SubscriptionHub,
  type SubscriptionHubStats,
} from './subscriptions';

export interface AppDeps {
  config: Config;
  logger: Logger;
  /** A BullMQ-ready connection (createRedisConnection); the app duplicates it as needed and never closes it. */
  redis: Redis;
  keys: Keys;
}

export interface RelayStats extends RecordPipelineStats {
  relayId: string;
  sessions: number;
  acks: number;
  nacks: Partial<Record<NackCode, number>>;
  receiptsDelivered: number;
  receiptsUndeliverable: number;
  closedSlowReaders: number;
  subscriptions: SubscriptionHubStats;
}

export interface App {
  readonly relayId: string;
  start(): Promise<void>;
  /**
   * Drains before a stop (docs/protocol.md §5.4.1): takes no new sessions, marks the relay
   * draining in the registry (the gateway places none on it), tells every session
   * `relay_draining` once its owed replies went out, and waits for the sessions to leave, up
   * to DRAIN_TIMEOUT_MS or until `signal` aborts. Resolves with whether every session left.
   * Control requests (DELETEs), receipts and subscriptions keep being served meanwhile; call
   * stop() after it.
   */
  drain(options?: { signal?: AbortSignal }): Promise<boolean>;
  /**
   * Stops taking sessions, answers publishes still arriving with `shutting_down`, queues
   * and acks what was accepted, closes every session, the workers and the queue, and
   * leaves the registry. Does not call node-datachannel's process-wide cleanup().
   */
  stop(): Promise<void>;
  stats(): RelayStats;
}

export function createApp(deps: AppDeps): App {
  const { config, logger: rootLogger, redis, keys } = deps;
  const relayId = config.relayId;
  const logger = rootLogger.child({ relayId });
  const bus: BusDeps = { connection: redis, keys };
  const registry = createRelayRegistry({ redis, keys });
  const counters = createCounters();

  let recordsConnection: Redis | undefined;
  let recordsQueue: TypedQueue<'records'> | undefined;
  let pipeline: RecordPipeline | undefined;
  let manager: SessionManager | undefined;
  let controlWorker: TypedWorker<'relayControl'> | undefined;
  let receiptsWorker: TypedWorker<'receipts'> | undefined;
  let indexer: IndexerClient | undefined;
  let heartbeat: Heartbeat | undefined;
  let stopping: Promise<void> | undefined;
  let audit: AuditPublisher | undefined;
  let subscriptions: SubscriptionHub | undefined;
  let readerConnection: Redis | undefined;
  let draining: Promise<boolean> | undefined;
  const publicAddress = createPublicAddress(config.ice.publicAddress, { logger });
  // GET /metrics, /readyz (Redis answers PING), /healthz on OPS_HOST:OPS_PORT (0: none).
  const ops: OpsServer = createOpsServer({
    ...config.ops,
    logger,
    checks: { redis: () => redis.ping() },
  });
  let unregisterMetrics: (() => void) | undefined;
  // Queues only read for their depths (the workers and the records queue have their own).
  let depthQueues: (TypedQueue<'receipts'> | TypedQueue<'relayControl'>)[] = [];

  async function start(): Promise<void> {
    await publicAddress.start();
    // Records are acked only once queued, so their queue must fail fast when Redis is
    // away (the client gets `unavailable` and retries) instead of waiting in ioredis'
    // offline queue.
    recordsConnection = redis.duplicate({ enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    recordsQueue = createQueue({ connection: recordsConnection, keys }, 'records');
    recordsQueue.on('error', (error) => logger.warn({ err: error }, 'records queue error'));
    await recordsQueue.waitUntilReady();
    const queue = recordsQueue;
    const batchOptions = {
      streamMaxLen: config.topicStreamMaxLen,
      jobOptions: RECORD_JOB_OPTIONS,
    };
    pipeline = createRecordPipeline({
      queueGroup: (jobs) => addRecordBatches(queue, keys, jobs, batchOptions),
      flushMs: config.recordFlushMs,
      flushMax: config.recordFlushMax,
      jobsPerAdd: RECORD_JOBS_PER_ADD,
      bufferMax: config.recordBufferMax,
      sessionBufferMax: config.recordBufferMaxPerSession,
      logger,
    });
    const hash = await createContentHasher();
    audit = createAuditPublisher(bus, {
      onError: (error) => logger.warn({ err: error }, 'could not queue audit events; will retry'),
    });
    indexer = createIndexerClient({ bus, timeoutMs: config.lookupTimeoutMs, logger });
    const lookups = indexer;
    // The subscription reader blocks on XREAD: a connection of its own.
    readerConnection = redis.duplicate({ maxRetriesPerRequest: null });
    subscriptions = createSubscriptionHub({
      redis,
      reader: readerConnection,
      keys,
      logger: logger.child({ subsystem: 'subscriptions' }),
      // What a topic's stream does not hold comes from Postgres, through the chain-indexer.
      history: async (topic, after, limit) =>
        (await lookups.topicRecords(topic, after, limit)).records,
    });
    subscriptions.start();
    manager = new SessionManager({
      config,
      logger,
      pipeline,
      hash,
      registry,
      counters,
      audit,
      subscriptions,
      publicAddress: publicAddress.current,
    });
    receiptsWorker = createReceiptsWorker({ bus, relayId, manager, indexer, counters, logger });
    controlWorker = createControlWorker({ bus, relayId, manager, logger });
    await Promise.all([receiptsWorker.waitUntilReady(), controlWorker.waitUntilReady()]);
    const sessions = manager;
    heartbeat = createHeartbeat({
      registry,
      relayId,
      startedAt: Date.now(),
      intervalMs: config.heartbeatMs,
      sessionTtlMs: config.sessionTtlMs,
      sessionIds: () => sessions.ids(),
      logger,
    });
    await heartbeat.start();
    const receiptsQueue = createQueue(bus, 'receipts', relayId);
    const controlQueue = createQueue(bus, 'relayControl', relayId);
    depthQueues = [receiptsQueue, controlQueue];
    for (const depthQueue of depthQueues)
      depthQueue.on('error', (error) => logger.warn({ err: error }, 'queue error'));
    const removeDepths = registerQueueDepths({
      records: queue,
      receipts: receiptsQueue,
      relayControl: controlQueue,
    });
    const removeStats = registerRelayMetrics(stats);
    unregisterMetrics = () => {
      removeDepths();
      removeStats();
    };
    await ops.start();
    logger.info(
      {
        iceUdpPort: config.ice.udpPort || 'ephemeral',
        iceBindAddress: config.ice.bindAddress,
        icePublicAddress: publicAddress.current(),
        maxSessions: config.maxSessions,
      },
      'relay started',
    );
  }

  async function drainOnce(signal: AbortSignal | undefined): Promise<boolean> {
    // Not started (or stopping already): nothing to drain.
    if (!manager || !heartbeat || stopping) return true;
    const startedAt = Date.now();
    const held = manager.size;
    manager.stopAccepting();
    try {
      await heartbeat.drain();
    } catch (error) {
      logger.warn({ err: error }, 'could not mark the relay draining in the registry');
    }
    manager.drainAll(
      `reconnect through the gateway; this session ends within ${config.drainTimeoutMs} ms`,
    );
    logger.info({ sessions: held, drainTimeoutMs: config.drainTimeoutMs }, 'relay draining');
    const empty = await manager.whenEmpty(config.drainTimeoutMs, signal);
    logger.info(
      { left: manager.size, drainedMs: Date.now() - startedAt, cutShort: signal?.aborted ?? false },
      empty ? 'relay drained' : 'drain over with sessions still open; ending them',
    );
    return empty;
  }

  async function stopOnce(): Promise<void> {
    publicAddress.stop();
    const step = async (name: string, fn: () => Promise<void> | void) => {
      try {
        await fn();
      } catch (error) {
        logger.warn({ err: error, step: name }, 'stop step failed');
      }
    };
    // 1. No new sessions: refuse them, and stop taking control jobs (waits for running ones).
    manager?.stopAccepting();
    await step('control worker', () => controlWorker?.close());
    // 2. Sessions answer new publishes with shutting_down and get the acks they are owed
    //    (the pipeline keeps flushing meanwhile), then close.
    await step('sessions', () => manager?.endAll('relay stopping', 'shutting_down'));
    // 3. Whatever is still buffered gets queued (or refused) before the queue closes.
    await step('pipeline', () => pipeline?.close());
    await step('subscriptions', () => subscriptions?.close());
    readerConnection?.disconnect();
    await step('receipts worker', () => receiptsWorker?.close());
    await step('indexer client', () => indexer?.close());
    // After the sessions closed: their session_closed / session_nacks events are buffered.
    await step('audit publisher', () => audit?.close());
    await step('records queue', () => recordsQueue?.close());
    recordsConnection?.disconnect();
    // 4. Leave the registry last: until now the gateway could still route DELETEs here.
    await step('registry', () => heartbeat?.stop());
    unregisterMetrics?.();
    await step('ops server', () => ops.stop());
    await step('depth queues', async () => {
      await Promise.all(depthQueues.map((depthQueue) => depthQueue.close()));
    });
    const { relayId: _relayId, ...final } = stats();
    logger.info(final, 'relay stopped');
  }

  function stats(): RelayStats {
    const pipelineStats = pipeline?.stats() ?? {
      pending: 0,
      jobsAdded: 0,
      recordsQueued: 0,
      failedAdds: 0,
      recordsRefused: 0,
      recordsRateLimited: 0,
    };
    return {
      relayId,
      sessions: manager?.size ?? 0,
      ...pipelineStats,
      acks: counters.acks,
      nacks: { ...counters.nacks },
      receiptsDelivered: counters.receiptsDelivered,
      receiptsUndeliverable: counters.receiptsUndeliverable,
      closedSlowReaders: counters.closedSlowReaders,
      subscriptions: subscriptions?.stats() ?? {
        topics: 0,
        subscriptions: 0,
        recordsDelivered: 0,
        catchUps: 0,
        historyRecords: 0,
        ended: 0,
        batchNotices: 0,
      },
    };
  }

  return {
    relayId,
    start,
    drain(options = {}) {
      draining ??= drainOnce(options.signal);
      return draining;
    },
    stop() {
      stopping ??= stopOnce();
      return stopping;
    },
    stats,
  };
}
