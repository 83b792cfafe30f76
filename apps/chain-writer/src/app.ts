import { createQueue, type Keys, type TypedQueue, type TypedWorker } from '@streamanchor/bus';
import type { Database } from '@streamanchor/db';
import {
  createOpsServer,
  type Logger,
  type Loop,
  registerQueueDepths,
} from '@streamanchor/service-kit';
import type { Redis } from 'ioredis';
import { type Kysely, sql } from 'kysely';
import type { Address } from 'viem';
import {
  type AnchorEffects,
  createAnchorEffects,
  createSigner,
  createSignerLock,
  createSubmitter,
  type Submitter,
} from './anchor';
import { createAuditAnchorer, createAuditWorker } from './audit';
import { type Batcher, createBatcher } from './batcher';
import {
  createChainClients,
  verifyChain,
  type WriterPublicClient,
  type WriterWalletClient,
} from './chain';
import type { Config } from './config';
import { createIngestWorker } from './ingest';
import { writerLedger } from './ledger';
import { startWriterMetrics, type WriterMetricsHooks } from './metrics';
import { createPayloadPruner } from './pruner';

export interface AppDeps {
  config: Config;
  logger: Logger;
  /** BullMQ connection (maxRetriesPerRequest: null); the worker duplicates it. Not closed by stop(). */
  redis: Redis;
  keys: Keys;
  /** Opened and migrated by the caller (the local stack shares one PGlite between services). */
  db: Kysely<Database>;
  /** Built from RPC_URL when absent (HTTP transport). */
  publicClient?: WriterPublicClient;
  /** Built from RPC_URL and WRITER_PRIVATE_KEY when absent; must carry a local account. */
  walletClient?: WriterWalletClient;
  /**
   * Test seam: wraps the submitter's effects (sign, ledger writes, broadcast), e.g. to fail
   * at a chosen point as a crash would. Production leaves it out and runs the real ones.
   */
  wrapEffects?: (real: AnchorEffects) => AnchorEffects;
  /** Poll intervals: batcher (default 100 ms), submitter (default 500 ms), payload pruner (default 60 s). */
  intervals?: { batcherMs?: number; anchorMs?: number; pruneMs?: number };
}

/** Counters of the running app (exposed for tests and a future metrics endpoint). */
export interface WriterMetrics {
  /** Items (records or audit events) written to dead_letters since start. */
  readonly deadLetters: number;
  /** Audit entries appended since start. */
  readonly auditAppended: number;
  /** Audit heads queued for anchoring since start. */
  readonly auditAnchored: number;
}

export interface App {
  /** Verifies the chain (fails fast on a CHAIN_ID mismatch), then consumes, batches and anchors. */
  start(): Promise<void>;
  /** Stops taking jobs (waits for active ones), then the batcher and the submitter. */
  stop(): Promise<void>;
  /** The signer's address (lowercase). */
  readonly signer: Address;
  /** Lowercase contract address, as stored in batches.contract. */
  readonly contract: Address;
  readonly metrics: WriterMetrics;
}

export function createApp(deps: AppDeps): App {
  const { config, db, keys } = deps;
  const logger = deps.logger;
  const clients =
    deps.publicClient && deps.walletClient
      ? { publicClient: deps.publicClient, walletClient: deps.walletClient }
      : createChainClients(config);
  const publicClient = deps.publicClient ?? clients.publicClient;
  const walletClient = deps.walletClient ?? clients.walletClient;
  const signer = walletClient.account.address.toLowerCase() as Address;
  const contract = config.CONTRACT_ADDRESS.toLowerCase() as Address;

  const ledger = writerLedger(db, { chainId: config.CHAIN_ID, contract });
  const lock = createSignerLock({
    redis: deps.redis,
    key: keys.writerLock(config.CHAIN_ID, signer),
    logger,
  });
  let worker: TypedWorker<'records'> | undefined;
  let auditWorker: TypedWorker<'audit'> | undefined;
  let auditAnchorer: Loop | undefined;
  let pruner: Loop | undefined;
  let batcher: Batcher | undefined;
  let submitter: Submitter | undefined;
  let started = false;
  // GET /metrics, /readyz (Redis, the database, the RPC answer), /healthz on OPS_PORT (0: none).
  const ops = createOpsServer({
    host: config.OPS_HOST,
    port: config.OPS_PORT,
    logger,
    checks: {
      redis: () => deps.redis.ping(),
      database: () => sql`select 1`.execute(db),
      rpc: () => publicClient.getBlockNumber(),
    },
  });
  let metricsHooks: WriterMetricsHooks | undefined;
  let depthQueues: (TypedQueue<'records'> | TypedQueue<'audit'>)[] = [];
  let removeDepths: (() => void) | undefined;
  const counters = { deadLetters: 0, auditAppended: 0, auditAnchored: 0 };
  const onDeadLettered = (letters: readonly unknown[]) => {
    counters.deadLetters += letters.length;
    logger.error(
      { deadLettered: letters.length, deadLettersTotal: counters.deadLetters },
      'ALERT: items dead-lettered (see the dead_letters table)',
    );
  };

  return {
    signer,
    contract,
    metrics: {
      get deadLetters() {
        return counters.deadLetters;
      },
      get auditAppended() {
        return counters.auditAppended;
      },
      get auditAnchored() {
        return counters.auditAnchored;
      },
    },
    async start() {
      if (started) return;
      await verifyChain({
        publicClient,
        chainId: config.CHAIN_ID,
        contract,
        signer,
        rpcUrl: config.RPC_URL,
      });
      started = true;
      const effects = deps.wrapEffects?.(
        createAnchorEffects({
          signer: createSigner({ publicClient, walletClient, chainId: config.CHAIN_ID, contract }),
          ledger,
          publicClient,
        }),
      );
      metricsHooks = startWriterMetrics({
        db,
        logger,
        chainId: config.CHAIN_ID,
        contract,
        counters,
        confirmed: () => submitter?.confirmed,
      });
      const bus = { connection: deps.redis, keys };
      const recordsQueue = createQueue(bus, 'records');
      const auditQueue = createQueue(bus, 'audit');
      depthQueues = [recordsQueue, auditQueue];
      for (const queue of depthQueues)
        queue.on('error', (error) => logger.warn({ err: error }, 'queue error'));
      removeDepths = registerQueueDepths({ records: recordsQueue, audit: auditQueue });
      submitter = createSubmitter({
        db,
        logger,
        publicClient,
        walletClient,
        contract,
        chainId: config.CHAIN_ID,
        confirmTimeoutMs: config.TX_CONFIRM_TIMEOUT_MS,
        lock,
        ...(deps.intervals?.anchorMs === undefined ? {} : { intervalMs: deps.intervals.anchorMs }),
        ...(effects ? { effects } : {}),
      });
      batcher = createBatcher({
        db,
        logger,
        options: {
          maxRecords: config.BATCH_MAX_RECORDS,
          maxAgeMs: config.BATCH_MAX_AGE_MS,
          chainId: config.CHAIN_ID,
          contract,
        },
        ...(deps.intervals?.batcherMs === undefined
          ? {}
          : { intervalMs: deps.intervals.batcherMs }),
        onBuilt: () => {
          metricsHooks?.batchBuilt();
          submitter?.wake();
        },
      });
      worker = createIngestWorker({
        bus: { connection: deps.redis, keys },
        db,
        logger,
        concurrency: config.RECORDS_CONCURRENCY,
        onStored: (count) => {
          metricsHooks?.recordsStored(count);
          batcher?.recordsStored(count);
        },
        onDeadLettered,
      });
      auditWorker = createAuditWorker({
        bus: { connection: deps.redis, keys },
        db,
        logger,
        onDeadLettered,
        onAppended: (count) => {
          counters.auditAppended += count;
        },
      });
      auditAnchorer = createAuditAnchorer({
        db,
        logger,
        intervalMs: config.AUDIT_ANCHOR_INTERVAL_MS,
        onAnchored: () => {
          counters.auditAnchored += 1;
          batcher?.wake();
        },
      });
      // Payload retention: off (keep forever) when PAYLOAD_RETENTION_DAYS is unset or 0.
      const retentionDays = config.PAYLOAD_RETENTION_DAYS ?? 0;
      pruner =
        retentionDays > 0
          ? createPayloadPruner({
              db,
              logger,
              chainId: config.CHAIN_ID,
              contract,
              retentionDays,
              ...(deps.intervals?.pruneMs === undefined
                ? {}
                : { intervalMs: deps.intervals.pruneMs }),
            })
          : undefined;
      submitter.start();
      batcher.start();
      auditAnchorer.start();
      pruner?.start();
      await Promise.all([worker.waitUntilReady(), auditWorker.waitUntilReady()]);
      await ops.start();
      logger.info(
        {
          chainId: config.CHAIN_ID,
          contract,
          signer,
          batchMaxRecords: config.BATCH_MAX_RECORDS,
          batchMaxAgeMs: config.BATCH_MAX_AGE_MS,
          auditAnchorIntervalMs: config.AUDIT_ANCHOR_INTERVAL_MS,
          payloadRetentionDays: config.PAYLOAD_RETENTION_DAYS ?? 0,
        },
        'chain-writer started',
      );
    },
    async stop() {
      if (!started) return;
      started = false;
      await Promise.all([worker?.close(), auditWorker?.close()]);
      await auditAnchorer?.stop();
      await pruner?.stop();
      await batcher?.stop();
      await submitter?.stop();
      metricsHooks?.stop();
      metricsHooks = undefined;
      removeDepths?.();
      await Promise.all([ops.stop(), ...depthQueues.map((queue) => queue.close())]);
      depthQueues = [];
      await lock
        .release()
        .catch((error) => logger.warn({ err: error }, 'releasing the signer lock failed'));
      logger.info('chain-writer stopped');
    },
  };
}
