// Reorgs fired between two of the indexer's own RPC calls, through a viem transport that
// forwards every call to a real anvil and, when the plan says so, runs `anvil_reorg` after a
// call answered and before the indexer sees the answer (the worst moment: what it holds is
// already stale when it acts on it).
import { createKeys, createRedisConnection, type Keys } from '@streamanchor/bus';
import { deployStreamAnchor, streamAnchorAbi } from '@streamanchor/contracts';
import type { DatabaseHandle } from '@streamanchor/db';
import { createLogger } from '@streamanchor/service-kit';
import {
  type Anvil,
  createTestDatabase,
  deleteRedisPrefix,
  startAnvil,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import type { Redis } from 'ioredis';
import { createPublicClient, custom, http, type PublicClient } from 'viem';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { type App, createApp } from '../app';
import type { Config } from '../config';
import {
  anchorOnChain,
  anvilChain,
  type ChainClients,
  chainClients,
  mine,
  randomSessionId,
  type SeededBatch,
  seedBatch,
  testConfig,
} from '../test-fixtures';

/** Decides, after each answered call, whether to reorg now and how deep. */
type ReorgPlan = (call: { method: string; index: number }) => number | undefined;

/** Reorgs `depth` blocks once, right after the first `method` call answered. */
function onceAfter(method: string, depth: number): ReorgPlan {
  let fired = false;
  return (call) => {
    if (fired || call.method !== method) return undefined;
    fired = true;
    return depth;
  };
}

function reorgingClient(rpcUrl: string, plan: { current: ReorgPlan }) {
  const upstream = createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) });
  const fired: { method: string; depth: number }[] = [];
  let index = 0;
  const client = createPublicClient({
    chain: anvilChain(rpcUrl),
    transport: custom({
      async request({ method, params }) {
        const result = await upstream.request({ method, params } as never);
        const depth = plan.current({ method, index: index++ });
        if (depth) {
          await upstream.request({ method: 'anvil_reorg', params: [depth, []] } as never);
          fired.push({ method, depth });
        }
        return result;
      },
    }),
  }) as PublicClient;
  return { client, fired };
}

describe('chain-indexer under reorgs between its calls', () => {
  let anvil: Anvil;
  let database: DatabaseHandle;
  let redis: Redis;
  let prefix: string;
  let keys: Keys;
  let chain: ChainClients;
  let contract: `0x${string}`;
  let deploymentBlock: number;
  let apps: App[];
  const logger = createLogger({ service: 'chain-indexer-test', level: 'silent' });

  beforeEach(async () => {
    apps = [];
    [anvil, database] = await Promise.all([startAnvil(), createTestDatabase('pglite')]);
    prefix = testRedisPrefix('indexer-reorg');
    keys = createKeys(prefix);
    redis = createRedisConnection(TEST_REDIS_URL, 'chain-indexer-test');
    chain = chainClients(anvil.rpcUrl);
    const deployed = await deployStreamAnchor(chain);
    contract = deployed.address.toLowerCase() as `0x${string}`;
    deploymentBlock = Number(deployed.blockNumber);
  });

  afterEach(async () => {
    for (const app of apps) await app.stop();
    redis.disconnect();
    await deleteRedisPrefix(prefix);
    await database.close();
    await anvil.stop();
  });

  function makeApp(client: PublicClient, overrides: Partial<Config> = {}): App {
    const config = testConfig({
      rpcUrl: anvil.rpcUrl,
      contract,
      deploymentBlock,
      redisPrefix: prefix,
      ...overrides,
    });
    const app = createApp({ config, logger, redis, keys, db: database.db, publicClient: client });
    apps.push(app);
    return app;
  }

  async function seedAndAnchor(count: number): Promise<SeededBatch[]> {
    const batches: SeededBatch[] = [];
    for (let i = 0; i < count; i++) {
      const batch = await seedBatch(database.db, {
        contract,
        sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 2 }],
      });
      await anchorOnChain(chain, contract, batch);
      batches.push(batch);
    }
    return batches;
  }

  /** Plays the writer: anchors again every batch the chain no longer holds. */
  async function reanchorDropped(batches: readonly SeededBatch[]): Promise<number> {
    let again = 0;
    for (const batch of batches) {
      const anchored = await chain.publicClient.readContract({
        address: contract,
        abi: streamAnchorAbi,
        functionName: 'isAnchored',
        args: [batch.batchId],
      });
      if (!anchored) {
        await anchorOnChain(chain, contract, batch);
        again++;
      }
    }
    return again;
  }

  /** The indexer's events equal the chain's logs, and every batch is final in a canonical block. */
  async function expectCanonical(batches: readonly SeededBatch[]) {
    const logs = await chain.publicClient.getContractEvents({
      address: contract,
      abi: streamAnchorAbi,
      eventName: 'BatchAnchored',
      fromBlock: BigInt(deploymentBlock),
      strict: true,
    });
    const events = await database.db
      .selectFrom('anchor_events')
      .select(['block_hash', 'log_index', 'batch_id'])
      .orderBy('block_number')
      .orderBy('log_index')
      .execute();
    expect(events).toEqual(
      logs.map((log) => ({
        block_hash: log.blockHash,
        log_index: log.logIndex,
        batch_id: log.args.batchId,
      })),
    );
    const rows = await database.db
      .selectFrom('batches')
      .select(['batch_id', 'status', 'block_hash', 'block_number'])
      .execute();
    expect(rows).toHaveLength(batches.length);
    for (const row of rows) {
      expect(row.status).toBe('final');
      const block = await chain.publicClient.getBlock({ blockNumber: BigInt(row.block_number!) });
      expect(row.block_hash).toBe(block.hash);
    }
    const finals = await database.db
      .selectFrom('receipt_notices')
      .select(['block_hash', 'block_number'])
      .where('status', '=', 'final')
      .execute();
    expect(finals).toHaveLength(batches.length);
    for (const notice of finals) {
      const block = await chain.publicClient.getBlock({ blockNumber: BigInt(notice.block_number) });
      expect(notice.block_hash).toBe(block.hash);
    }
  }

  test('behavior: a reorg right after eth_getLogs answered stores no orphaned event', async () => {
    const batches = await seedAndAnchor(4);
    const plan = { current: onceAfter('eth_getLogs', 2) };
    const { client, fired } = reorgingClient(anvil.rpcUrl, plan);
    const app = makeApp(client, { finalityDepth: 5 });
    await app.syncToHead();
    await app.syncToHead();
    expect(fired).toEqual([{ method: 'eth_getLogs', depth: 2 }]);

    // Every stored event is in a canonical block, and the two dropped anchors are no batch's.
    const events = await database.db.selectFrom('anchor_events').selectAll().execute();
    for (const event of events) {
      const block = await chain.publicClient.getBlock({ blockNumber: BigInt(event.block_number) });
      expect(event.block_hash).toBe(block.hash);
    }
    expect(await reanchorDropped(batches)).toBe(2);
    await mine(chain.publicClient, 5);
    await app.syncToHead();
    await expectCanonical(batches);
  });

  test('behavior: a reorg right after a header was read is found by its parent hash', async () => {
    const batches = await seedAndAnchor(3);
    let headers = 0;
    const plan = {
      current: (({ method }) =>
        method === 'eth_getBlockByNumber' && ++headers === 2 ? 3 : undefined) as ReorgPlan,
    };
    const { client, fired } = reorgingClient(anvil.rpcUrl, plan);
    const app = makeApp(client, { finalityDepth: 5 });
    await app.syncToHead();
    expect(fired).toHaveLength(1);
    await reanchorDropped(batches);
    await mine(chain.publicClient, 5);
    await app.syncToHead();
    await expectCanonical(batches);
  });

  test('behavior: random reorgs of depth 1–3 at any call, then the chain settles', async () => {
    const batches = await seedAndAnchor(6);
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let budget = 8;
    const plan = {
      current: (() => {
        if (budget > 0 && random() < 0.15) {
          budget--;
          return 1 + Math.floor(random() * 3);
        }
        return undefined;
      }) as ReorgPlan,
    };
    const { client, fired } = reorgingClient(anvil.rpcUrl, plan);
    const app = makeApp(client, { finalityDepth: 5 });
    for (let round = 0; round < 12; round++) {
      await app.syncToHead();
      await reanchorDropped(batches);
      await mine(chain.publicClient, 1);
    }
    expect(fired.length).toBeGreaterThan(0);
    plan.current = () => undefined;
    await reanchorDropped(batches);
    await mine(chain.publicClient, 5);
    await app.syncToHead();
    await expectCanonical(batches);
    console.log(
      `random reorgs: ${fired.length} fired (${fired.map((f) => `${f.method}:${f.depth}`).join(', ')})`,
    );
  });

  test('behavior: a reorg shallower than FINALITY_DEPTH never touches a range-scanned block', async () => {
    const batches = await seedAndAnchor(3);
    await mine(chain.publicClient, 10);
    const plan = { current: onceAfter('eth_getLogs', 2) };
    const { client } = reorgingClient(anvil.rpcUrl, plan);
    const app = makeApp(client, { finalityDepth: 4 });
    const first = await app.syncOnce();
    expect(first.mode).toBe('range');
    await app.syncToHead();
    await expectCanonical(batches);
  });
});
