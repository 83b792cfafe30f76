import { createQueue, type Keys } from '@streamanchor/bus';
import { createBatchLedger, type Database } from '@streamanchor/db';
import {
  AGAIN,
  createLoop,
  createOpsServer,
  type Logger,
  registerQueueDepths,
} from '@streamanchor/service-kit';
import type { Redis } from 'ioredis';
import { type Kysely, sql } from 'kysely';
import { createPublicClient, http, type PublicClient } from 'viem';
import type { Config } from './config';
import { ChainIdMismatchError } from './errors';
import type { Fence } from './leader';
import { createLookupWorker } from './lookup';
import { observeFlush, observeStep } from './metrics';
import { createReceiptOutbox, type FlushResult } from './receipts';
import { createSyncer, type SyncStep } from './sync';

export interface AppDeps {
  config: Config;
  logger: Logger;
  /** Used for the receipts queues (BullMQ); owned by the caller. */
  redis: Redis;
  keys: Keys;
  /** Owned by the caller (the local stack shares one PGlite between writer and indexer). */
  db: Kysely<Database>;
  /** Defaults to an HTTP client on config.rpcUrl. */
  publicClient?: PublicClient;
  /** The active term's fence (src/leader), checked in every sync write transaction. */
  fence?: Fence;
}

export interface SyncOnceResult extends SyncStep {
  receipts: FlushResult;
}

export interface App {
  /** Checks the chain id (throws ChainIdMismatchError), then polls until stop(). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** One block range plus the receipts outbox; what the loop does each turn. */
  syncOnce(): Promise<SyncOnceResult>;
  /** syncOnce until the cursor reaches head − CONFIRMATIONS. */
  syncToHead(): Promise<SyncOnceResult>;
  verifyChain(): Promise<void>;
}

/** Longest pause after repeated failures. */
const MAX_BACKOFF_MS = 30_000;
/** Records whose batches the lookup worker keeps (with their rebuilt proofs). */
const LOOKUP_CACHE_RECORDS = 10_000;

export function createApp({ config, logger, redis, keys, db, publicClient, fence }: AppDeps): App {
  const client =
    publicClient ??
    createPublicClient({ transport: http(config.rpcUrl, { retryCount: 3, timeout: 30_000 }) });
  const syncer = createSyncer({ config, logger, db, client, fence });
  const outbox = createReceiptOutbox({ config, logger, db, bus: { connection: redis, keys } });
  const ledger = createBatchLedger(db, {
    chainId: config.chainId,
    contract: config.contract,
    finalityDepth: config.finalityDepth,
    // A lookup's proof comes from its whole batch's rebuilt tree: keep the recent batches,
    // which the clients polling for their receipts ask about.
    contentCacheRecords: Math.min(config.receiptCacheRecords, LOOKUP_CACHE_RECORDS),
  });
  // Answers the gateway's and the relays' lookups (receipts, a session's records of a batch,
  // history) while the app runs.
  let lookup: ReturnType<typeof createLookupWorker> | undefined;

  // GET /metrics, /readyz (Redis, the database, the RPC answer), /healthz on OPS_PORT (0: none).
  const ops = createOpsServer({
    host: config.ops?.host ?? '127.0.0.1',
    port: config.ops?.port ?? 0,
    logger,
    checks: {
      redis: () => redis.ping(),
      database: () => sql`select 1`.execute(db),
      rpc: () => client.getBlockNumber(),
    },
  });
  const lookupQueue = createQueue({ connection: redis, keys }, 'indexerLookup');
  lookupQueue.on('error', (error) => logger.warn({ err: error }, 'queue error'));
  let removeDepths: (() => void) | undefined;
  const step = async () => {
    const result = await syncer.step();
    observeStep(result, config.confirmations);
    return result;
  };
  const flush = async () => {
    const result = await outbox.flush();
    observeFlush(result);
    return result;
  };

  async function syncOnce(): Promise<SyncOnceResult> {
    const step = await syncer.step();
    observeStep(step, config.confirmations);
    // Reorged notices (written by the rewind) go out like any other: a client keeps the
    // receipt with the highest revision, so a stale job still waiting changes nothing.
    const receipts = await flush();
    return { ...step, receipts };
  }

  /**
   * The running indexer: the sync and the receipts outbox each in a loop of their own, so
   * that neither waits for the other (under load, sending one block's receipts takes about
   * as long as a block: in one loop, the next block's anchorings waited for it). Each step
   * wakes the outbox; the outbox also polls, and sends any notice left by an earlier run.
   * Each runs again at once while it has more to do, else after the poll interval (or a
   * wake); after failures with capped exponential backoff.
   */
  const backoff = { maxBackoffMs: MAX_BACKOFF_MS, maxBackoffDoublings: 10 };
  const outboxLoop = createLoop(
    'indexer receipts outbox',
    logger,
    config.pollIntervalMs,
    async () => {
      await flush();
      return undefined;
    },
    backoff,
  );
  const syncLoop = createLoop(
    'indexer step',
    logger,
    config.pollIntervalMs,
    async () => {
      const result = await step();
      outboxLoop.wake();
      return result.caughtUp ? undefined : AGAIN;
    },
    backoff,
  );

  async function verifyChain(): Promise<void> {
    const actual = await client.getChainId();
    if (actual !== config.chainId)
      throw new ChainIdMismatchError(config.chainId, actual, config.rpcUrl);
  }

  return {
    verifyChain,
    syncOnce,
    async syncToHead() {
      for (;;) {
        const result = await syncOnce();
        if (result.caughtUp) return result;
      }
    },
    async start() {
      if (syncLoop.running) return;
      await verifyChain();
      logger.info(
        {
          chainId: config.chainId,
          contract: config.contract,
          deploymentBlock: config.deploymentBlock,
          confirmations: config.confirmations,
          finalityDepth: config.finalityDepth,
        },
        'chain-indexer started',
      );
      syncLoop.start();
      outboxLoop.start();
      lookup = createLookupWorker({ bus: { connection: redis, keys }, ledger, db, logger });
      removeDepths = registerQueueDepths({ indexerLookup: lookupQueue });
      await ops.start();
    },
    async stop() {
      await Promise.all([syncLoop.stop(), outboxLoop.stop()]);
      await lookup?.close();
      lookup = undefined;
      await outbox.close();
      removeDepths?.();
      await Promise.all([ops.stop(), lookupQueue.close()]);
    },
  };
}
