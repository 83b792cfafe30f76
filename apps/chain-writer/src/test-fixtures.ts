// Test helpers shared by this app's tests (real Redis, real anvil, PGlite and Postgres).
import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import {
  createKeys,
  createQueue,
  createQueueEvents,
  createRedisConnection,
  jobIds,
  type Keys,
  type TypedQueue,
} from '@streamanchor/bus';
import { deployStreamAnchor, streamAnchorAbi } from '@streamanchor/contracts';
import {
  type BatchLedger,
  createBatchLedger,
  type DatabaseHandle,
  type RecordLeavesRow,
} from '@streamanchor/db';
import { type AcceptedRecord, canonicalPayload, contentHashOf } from '@streamanchor/protocol';
import { BaseError, createLogger, LogEnv, type Logger, parseEnv } from '@streamanchor/service-kit';
import {
  ANVIL_TEST_PRIVATE_KEY,
  type Anvil,
  createTestDatabase,
  deleteRedisPrefix,
  startAnvil,
  TEST_REDIS_URL,
  type TestDatabaseKind,
  testRedisPrefix,
} from '@streamanchor/testing';
import type { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Address, Hex } from 'viem';
import type { AnchorEffects } from './anchor';
import { type App, createApp } from './app';
import { createChainClients, type WriterPublicClient, type WriterWalletClient } from './chain';
import { type Config, loadConfig } from './config';

/** Polls `check` until it returns a value other than undefined/false; generous timeout, no timing asserted. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 45_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function randomHex32(): Hex {
  return `0x${randomBytes(32).toString('hex')}`;
}

export function makeRecords(
  count: number,
  { topic = 'test.topic', subject = 'alice' } = {},
): AcceptedRecord[] {
  const sessionId = randomBytes(16).toString('base64url');
  return Array.from({ length: count }, (_, i) => {
    const payload = canonicalPayload({ n: i, note: `record ${i}`, unicode: 'ünïcødé' });
    return {
      recordId: randomHex32(),
      topic,
      subject,
      contentHash: contentHashOf(payload),
      acceptedAt: Date.now() + i,
      payload,
      relayId: 'relay-test',
      sessionId,
    };
  });
}

/** The tx a simulated crash stopped at. */
export interface CrashedAt {
  batchId: Hex;
  txHash: Hex;
  rawTx: Hex;
  nonce: number;
}

/** Thrown by every effect once the simulated process is "dead". */
export class SimulatedCrash extends BaseError {
  override name = 'SimulatedCrash';
}

/**
 * A crash of the writer process at `point`, for `fx.app({ wrapEffects })`: the real effect
 * runs, then this "process" is dead — that effect and every later one throws, so nothing
 * further is signed, stored or broadcast (the submitter's reads go on, harmlessly) until the
 * test stops the app and starts another (a restart).
 *   afterPersist: the signed tx was stored (status 'sent'), not broadcast.
 *   afterBroadcast: the node accepted (or already knew) the anchor tx.
 */
export function crashAt(point: 'afterPersist' | 'afterBroadcast') {
  let crashed: CrashedAt | undefined;
  const alive =
    <A extends unknown[], R>(effect: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (crashed) throw new SimulatedCrash(`simulated crash ${point}`);
      return effect(...args);
    };
  const wrapEffects = (real: AnchorEffects): AnchorEffects => ({
    signAnchor: alive(real.signAnchor),
    signFiller: alive(real.signFiller),
    recordAnchoredElsewhere: alive(real.recordAnchoredElsewhere),
    returnToBuilt: alive(real.returnToBuilt),
    persist: alive(async (anchor, replaces) => {
      const stored = await real.persist(anchor, replaces);
      if (stored && point === 'afterPersist') {
        crashed = anchor;
        throw new SimulatedCrash(`simulated crash ${point}`);
      }
      return stored;
    }),
    broadcast: alive(async (tx) => {
      const outcome = await real.broadcast(tx);
      if (point === 'afterBroadcast' && tx.batchId && outcome.kind !== 'rejected') {
        crashed = { batchId: tx.batchId, txHash: tx.txHash, rawTx: tx.rawTx, nonce: tx.nonce };
        throw new SimulatedCrash(`simulated crash ${point}`);
      }
      return outcome;
    }),
  });
  return { wrapEffects, reached: () => waitFor(`the crash point ${point}`, () => crashed) };
}

export interface WriterFixture {
  anvil: Anvil;
  database: DatabaseHandle;
  redis: Redis;
  keys: Keys;
  prefix: string;
  logger: Logger;
  contract: Address;
  deploymentBlock: bigint;
  publicClient: WriterPublicClient;
  walletClient: WriterWalletClient;
  queue: TypedQueue<'records'>;
  queueEvents: QueueEvents;
  config(overrides?: Record<string, string>): Config;
  /** Creates (and registers for cleanup) a writer app; call start() yourself. */
  app(options?: {
    env?: Record<string, string>;
    wrapEffects?: (real: AnchorEffects) => AnchorEffects;
  }): App;
  /** Adds one records job (kept when done); the job id is deterministic from the first record unless given. */
  send(records: AcceptedRecord[], jobId?: string): ReturnType<TypedQueue<'records'>['add']>;
  anchorLogs(
    batchId?: string,
  ): Promise<{ batchId: Hex; merkleRoot: Hex; recordCount: number; txHash: Hex }[]>;
  isAnchored(batchId: string): Promise<boolean>;
  recordsOf(batchId: string): Promise<RecordLeavesRow[]>;
  signerNonce(): Promise<number>;
  /** The ledger over this fixture's chain and contract, e.g. to play the indexer (markIncluded). */
  ledger(finalityDepth?: number): BatchLedger;
  close(): Promise<void>;
}

export async function createWriterFixture(kind: TestDatabaseKind): Promise<WriterFixture> {
  const [anvil, database] = await Promise.all([startAnvil(), createTestDatabase(kind)]);
  const prefix = testRedisPrefix('writer');
  const keys = createKeys(prefix);
  const redis = createRedisConnection(TEST_REDIS_URL, 'chain-writer-test');
  const { LOG_LEVEL: level } = parseEnv('chain-writer tests', Type.Object(LogEnv), {
    LOG_LEVEL: process.env.TEST_LOG_LEVEL || 'silent',
  });
  const logger = createLogger({ service: 'chain-writer-test', level });
  const baseEnv: Record<string, string> = {
    RPC_URL: anvil.rpcUrl,
    CHAIN_ID: '31337',
    CONTRACT_ADDRESS: '0x0000000000000000000000000000000000000000',
    WRITER_PRIVATE_KEY: ANVIL_TEST_PRIVATE_KEY,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: prefix,
    BATCH_MAX_AGE_MS: '200',
    TX_CONFIRM_TIMEOUT_MS: '5000',
    // No ops server unless a test asks for one (several writers run in one process).
    OPS_PORT: '0',
  };
  const { publicClient, walletClient } = createChainClients(loadConfig(baseEnv));
  const deployed = await deployStreamAnchor({ walletClient, publicClient });
  const contract = deployed.address.toLowerCase() as Address;
  baseEnv.CONTRACT_ADDRESS = contract;
  const queue = createQueue({ connection: redis, keys }, 'records');
  const queueEvents = createQueueEvents({ connection: redis, keys }, 'records');
  await queueEvents.waitUntilReady();
  const apps: App[] = [];

  const config = (overrides: Record<string, string> = {}) =>
    loadConfig({ ...baseEnv, ...overrides });

  return {
    anvil,
    database,
    redis,
    keys,
    prefix,
    logger,
    contract,
    deploymentBlock: deployed.blockNumber,
    publicClient,
    walletClient,
    queue,
    queueEvents,
    config,
    app({ env, wrapEffects } = {}) {
      const appConfig = config(env);
      const clients = createChainClients(appConfig);
      const app = createApp({
        config: appConfig,
        logger,
        redis,
        keys,
        db: database.db,
        ...clients,
        ...(wrapEffects ? { wrapEffects } : {}),
        intervals: { anchorMs: 200 },
      });
      apps.push(app);
      return app;
    },
    send(records, jobId) {
      return queue.add(
        'recordBatch',
        { records },
        {
          jobId: jobId ?? jobIds.recordBatch(records[0]!.recordId),
          attempts: 5,
          backoff: { type: 'exponential', delay: 200 },
          // Kept after completion so a test can always read its result (no race with removal).
          removeOnComplete: false,
        },
      );
    },
    async anchorLogs(batchId) {
      const logs = await publicClient.getContractEvents({
        address: contract,
        abi: streamAnchorAbi,
        eventName: 'BatchAnchored',
        fromBlock: deployed.blockNumber,
        toBlock: 'latest',
        ...(batchId ? { args: { batchId: batchId as Hex } } : {}),
      });
      return logs.map((log) => ({
        batchId: log.args.batchId!,
        merkleRoot: log.args.merkleRoot!,
        recordCount: Number(log.args.recordCount),
        txHash: log.transactionHash,
      }));
    },
    isAnchored(batchId) {
      return publicClient.readContract({
        address: contract,
        abi: streamAnchorAbi,
        functionName: 'isAnchored',
        args: [batchId as Hex],
      });
    },
    recordsOf(batchId) {
      return database.db
        .selectFrom('record_leaves')
        .selectAll()
        .where('batch_id', '=', batchId)
        .orderBy('leaf_index')
        .execute();
    },
    signerNonce() {
      return publicClient.getTransactionCount({
        address: walletClient.account.address,
        blockTag: 'latest',
      });
    },
    ledger(finalityDepth = 64) {
      return createBatchLedger(database.db, { chainId: 31337, contract, finalityDepth });
    },
    async close() {
      for (const app of apps.reverse()) await app.stop().catch(() => {});
      await queueEvents.close().catch(() => {});
      await queue.close().catch(() => {});
      redis.disconnect();
      await deleteRedisPrefix(prefix);
      await database.close();
      await anvil.stop();
    },
  };
}
