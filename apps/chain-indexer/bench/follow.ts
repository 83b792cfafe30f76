// Following-the-head benchmark (not a test): RPC calls per new block, ours against the
// naive follower the indexer used to be.
//
//   cd apps/chain-indexer && npx tsx bench/follow.ts [M=100] [finalityDepth=12]
//
// A fresh anvil with automine off; the chain grows by M blocks one at a time (mine one
// block with anvil_mine, then let each follower catch up), in three workloads: empty
// blocks, one anchorBatch tx in every block, one in every 10th block. Both followers see
// the same blocks, each through its own counting transport:
//   - ours: the indexer app (createApp, testConfig, real Redis, PGlite in memory), one
//     `app.syncToHead()` per new block: eth_blockNumber, the header by number (parentHash
//     link), eth_getLogs by block hash only when the logs bloom may hold BatchAnchored;
//   - baseline: per new block eth_blockNumber + one eth_getLogs range (cursor+1..head) +
//     one eth_getBlockByNumber for the cursor's hash, as the old indexer did (its events
//     go into anchor_events of its own fresh database, so it does the same work).
// Call counts are deterministic; the ms per block are wall times on a possibly shared
// machine (noisy; printed for orientation only). Needs Redis on 127.0.0.1 (as the tests do).
import { createKeys, createRedisConnection } from '@streamanchor/bus';
import { deployStreamAnchor, streamAnchorAbi } from '@streamanchor/contracts';
import type { Database } from '@streamanchor/db';
import { createLogger } from '@streamanchor/service-kit';
import {
  deleteRedisPrefix,
  startAnvil,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import type { Kysely } from 'kysely';
import { encodeFunctionData, type PublicClient } from 'viem';
import { createApp } from '../src/app';
import { chainClients, mine, randomHex32, testConfig } from '../src/test-fixtures';
import { closeDatabase, countingClient, fmt, freshDatabase } from './support';

const blocks = Number(process.argv[2] ?? 100);
const finalityDepth = Number(process.argv[3] ?? 12);

interface Workload {
  name: string;
  /** Whether block i (1-based) of the workload carries an anchor tx. */
  anchors: (i: number) => boolean;
}
const workloads: Workload[] = [
  { name: 'empty blocks', anchors: () => false },
  { name: 'anchor in every block', anchors: () => true },
  { name: 'anchor in every 10th block', anchors: (i) => i % 10 === 0 },
];

/** The old indexer's loop, one new block at a time: blockNumber, a getLogs range, the end's hash. */
function naiveFollower(client: PublicClient, db: Kysely<Database>, contract: `0x${string}`) {
  let cursor = -1n;
  let hash: string | null = null;
  return {
    start(at: bigint) {
      cursor = at;
    },
    async syncToHead(): Promise<number> {
      const head = await client.getBlockNumber({ cacheTime: 0 });
      if (head <= cursor) return 0;
      const logs = await client.getContractEvents({
        address: contract,
        abi: streamAnchorAbi,
        eventName: 'BatchAnchored',
        fromBlock: cursor + 1n,
        toBlock: head,
        strict: true,
      });
      const block = await client.getBlock({ blockNumber: head });
      await db.transaction().execute(async (tx) => {
        if (logs.length > 0)
          await tx
            .insertInto('anchor_events')
            .values(
              logs.map((log) => ({
                chain_id: 31337,
                contract,
                block_number: log.blockNumber.toString(),
                block_hash: log.blockHash.toLowerCase(),
                tx_hash: log.transactionHash.toLowerCase(),
                log_index: log.logIndex,
                batch_id: log.args.batchId.toLowerCase(),
                merkle_root: log.args.merkleRoot.toLowerCase(),
                record_count: Number(log.args.recordCount),
                writer: log.args.writer.toLowerCase(),
              })),
            )
            .onConflict((oc) => oc.columns(['chain_id', 'block_hash', 'log_index']).doNothing())
            .execute();
      });
      cursor = head;
      hash = block.hash;
      return logs.length;
    },
    /** The hash the old indexer kept with its cursor. */
    get hash() {
      return hash;
    },
  };
}

async function countEvents(db: Kysely<Database>): Promise<number> {
  const { count } = await db
    .selectFrom('anchor_events')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(count);
}

const anvil = await startAnvil();
const logger = createLogger({ service: 'bench', level: 'warn' });
const prefix = testRedisPrefix('bench');
const redis = createRedisConnection(TEST_REDIS_URL);
const oursDb = await freshDatabase('pglite (memory)');
const baseDb = await freshDatabase('pglite (memory)');
try {
  const chain = chainClients(anvil.rpcUrl);
  const { publicClient, walletClient } = chain;
  const deployed = await deployStreamAnchor({ walletClient, publicClient });
  const contract = deployed.address.toLowerCase() as `0x${string}`;
  await publicClient.request({ method: 'evm_setAutomine' as never, params: [false] as never });

  const ours = countingClient(anvil.rpcUrl);
  const base = countingClient(anvil.rpcUrl);
  const app = createApp({
    config: testConfig({
      rpcUrl: anvil.rpcUrl,
      contract,
      deploymentBlock: Number(deployed.blockNumber),
      redisPrefix: prefix,
      finalityDepth,
    }),
    logger,
    redis,
    keys: createKeys(prefix),
    db: oursDb.db,
    publicClient: ours.client,
  });
  const naive = naiveFollower(base.client, baseDb.db, contract);

  // Start both at the head (a few blocks so ours has a window), uncounted.
  await mine(publicClient, finalityDepth + 2);
  await app.syncToHead();
  naive.start(await publicClient.getBlockNumber({ cacheTime: 0 }));

  let nonce = await publicClient.getTransactionCount({
    address: walletClient.account.address,
    blockTag: 'pending',
  });
  const fees = await publicClient.estimateFeesPerGas();

  const results: string[] = [];
  console.log(
    `following the head: ${blocks} new blocks per workload, one at a time; FINALITY_DEPTH ${finalityDepth}, CONFIRMATIONS 0`,
  );
  for (const workload of workloads) {
    ours.reset();
    base.reset();
    const storedBefore = await countEvents(oursDb.db);
    let oursMs = 0;
    let baseMs = 0;
    let oursEvents = 0;
    let baseEvents = 0;
    for (let i = 1; i <= blocks; i++) {
      if (workload.anchors(i)) {
        await walletClient.sendTransaction({
          to: contract,
          data: encodeFunctionData({
            abi: streamAnchorAbi,
            functionName: 'anchorBatch',
            args: [randomHex32(), randomHex32(), 1 + (i % 1000)],
          }),
          nonce: nonce++,
          gas: 150_000n,
          maxFeePerGas: fees.maxFeePerGas * 2n,
          maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
        });
      }
      await mine(publicClient, 1);
      // Alternate who goes first, so neither always meets a warmer node.
      const runOurs = async () => {
        const t0 = performance.now();
        const before = ours.total();
        const step = await app.syncToHead();
        oursMs += performance.now() - t0;
        if (ours.total() === before) throw new Error('ours made no call');
        return step;
      };
      const runBase = async () => {
        const t0 = performance.now();
        baseEvents += await naive.syncToHead();
        baseMs += performance.now() - t0;
      };
      if (i % 2) {
        await runOurs();
        await runBase();
      } else {
        await runBase();
        await runOurs();
      }
      if (workload.anchors(i)) oursEvents += 1;
    }
    const oursStored = (await countEvents(oursDb.db)) - storedBefore;
    if (oursStored !== oursEvents || baseEvents !== oursEvents)
      throw new Error(
        `stored ${oursStored} (ours) / ${baseEvents} (baseline) of ${oursEvents} events`,
      );
    const methods = [...new Set([...ours.counts.keys(), ...base.counts.keys()])].sort();
    const row = (method: string, o: number, b: number) =>
      `  ${method.padEnd(22)} ${fmt(o / blocks).padStart(6)} ${fmt(b / blocks).padStart(9)} ${(b > 0 ? fmt(o / b) : o > 0 ? 'inf' : '-').padStart(7)}`;
    results.push(
      `${workload.name} (${oursEvents} anchors in ${blocks} blocks; both stored ${oursStored} events)`,
      `  ${'calls per new block'.padEnd(22)} ${'ours'.padStart(6)} ${'baseline'.padStart(9)} ${'ratio'.padStart(7)}`,
      ...methods.map((m) => row(m, ours.counts.get(m) ?? 0, base.counts.get(m) ?? 0)),
      row('total', ours.total(), base.total()),
      `  ${'ms per block (noisy)'.padEnd(22)} ${fmt(oursMs / blocks, 1).padStart(6)} ${fmt(baseMs / blocks, 1).padStart(9)} ${fmt(oursMs / baseMs).padStart(7)}`,
    );
  }
  console.log(results.join('\n'));
  await app.stop();
} finally {
  redis.disconnect();
  await deleteRedisPrefix(prefix);
  await closeDatabase(oursDb);
  await closeDatabase(baseDb);
  await anvil.stop();
}
