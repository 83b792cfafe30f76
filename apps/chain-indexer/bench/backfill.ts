// Backfill benchmark (not a test): how fast the indexer catches up with a chain's history,
// against Ponder on the same chain and events, on PGlite and on Postgres.
//
// The chain: a fresh anvil with StreamAnchor and N BatchAnchored events, `perBlock` to a
// block (seeded fast and cached in the temp dir, see seedChain in ./support), then 32 empty
// blocks, so every event lies below both indexers' finality horizon (ours FINALITY_DEPTH,
// Ponder's 30 blocks for an unknown chain): the figure is the historical backfill.
//
// Rows (events/s, per-round ratio ours / baseline, rounds alternated by the harness):
// - `backfill-pglite`, `backfill-postgres`: ours, the real indexer (`createApp(...)
//   .syncToHead()` from the deployment block, production settings: FINALITY_DEPTH 12 with
//   the last blocks read header by header and linked by parent hash, MAX_LOG_RANGE 2000,
//   ledger, cursor and header window in one transaction per step, the receipts outbox
//   flushed each step), against Ponder 1.0 (infra/bench-ponder, `ponder start`, one table
//   written by an indexing function per event). Bar: ours ≥ 3 × Ponder.
//   Ponder is timed from its "Started … historical sync" log line to its "Started returning
//   200 responses from /ready endpoint" line; its process startup (build, database setup,
//   migrations) is excluded and reported in the note. Database creation (and our migrations)
//   is outside our timing too. Each run gets a fresh database (a new PGlite directory, or a
//   throwaway Postgres database), so neither side reads a cache of the other's.
// - `backfill-naive-pglite`, `backfill-naive-postgres`: ours against a naive loop (eth_getLogs
//   over fixed ranges of about 10k logs + batched INSERTs into anchor_events, one transaction
//   per range, no reorg safety, no ledger, no cursor): what the safety costs. No bar.
// Both sides must store all N events, else the script fails (exit 1).
//
//   npx tsx apps/chain-indexer/bench/backfill.ts [N=100000] [perBlock=100] [rounds=3] [finalityDepth=12] [--quick] [--fresh-chain]
//
// --quick: N=5000, one round (what `pnpm bench --quick` runs). --fresh-chain: seed the chain
// again instead of loading the cached one. BENCH_KINDS=pglite or postgres runs one kind only.
// Needs Redis and Postgres on 127.0.0.1 (as the tests do) and `pnpm install` (for Ponder).
import { createKeys, createRedisConnection } from '@streamanchor/bus';
import { streamAnchorAbi } from '@streamanchor/contracts';
import type { Database } from '@streamanchor/db';
import { createLogger } from '@streamanchor/service-kit';
import {
  alternate,
  compareRow,
  deleteRedisPrefix,
  isQuick,
  reportRow,
  summarize,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import type { Kysely } from 'kysely';
import { createPublicClient, http, type PublicClient } from 'viem';
import { createApp } from '../src/app';
import { testConfig } from '../src/test-fixtures';
import { type PonderRun, ponderAvailable, runPonder } from './ponder';
import {
  type BenchDatabase,
  closeDatabase,
  countingClient,
  fmt,
  freshDatabase,
  seedChain,
} from './support';

const quick = isQuick();
const positional = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const total = Number(positional[0] ?? (quick ? 5000 : 100_000));
const perBlock = Number(positional[1] ?? 100);
const rounds = Number(positional[2] ?? (quick ? 1 : 3));
const finalityDepth = Number(positional[3] ?? 12);
const freshChain = process.argv.includes('--fresh-chain');
/** Empty blocks after the events: more than Ponder's finality (30 blocks on chain 31337). */
const TAIL = 32;
/** The naive loop's range: about 10k logs per eth_getLogs, under viem's response body cap. */
const NAIVE_RANGE = BigInt(Math.max(1, Math.floor(10_000 / perBlock)));
/** Rows per INSERT, as the indexer's store. */
const CHUNK = 1000;

type Kind = 'pglite' | 'postgres';
const kinds = (process.env.BENCH_KINDS?.split(',') as Kind[] | undefined) ?? ['pglite', 'postgres'];

const broken = ponderAvailable();
if (broken) {
  console.error(`backfill: ${broken}`);
  process.exit(1);
}

/** The naive loop: plain eth_getLogs ranges and batched inserts, one transaction per range. */
async function naive(
  client: PublicClient,
  db: Kysely<Database>,
  contract: `0x${string}`,
  fromBlock: bigint,
): Promise<number> {
  const head = await client.getBlockNumber({ cacheTime: 0 });
  let events = 0;
  for (let from = fromBlock; from <= head; from += NAIVE_RANGE) {
    const to = from + NAIVE_RANGE - 1n < head ? from + NAIVE_RANGE - 1n : head;
    const logs = await client.getContractEvents({
      address: contract,
      abi: streamAnchorAbi,
      eventName: 'BatchAnchored',
      fromBlock: from,
      toBlock: to,
      strict: true,
    });
    const rows = logs.map((log) => ({
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
    }));
    if (rows.length > 0) {
      await db.transaction().execute(async (tx) => {
        for (let i = 0; i < rows.length; i += CHUNK) {
          await tx
            .insertInto('anchor_events')
            .values(rows.slice(i, i + CHUNK))
            .onConflict((oc) => oc.columns(['chain_id', 'block_hash', 'log_index']).doNothing())
            .execute();
        }
      });
    }
    events += rows.length;
  }
  return events;
}

async function countEvents(db: Kysely<Database>): Promise<number> {
  const { count } = await db
    .selectFrom('anchor_events')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(count);
}

const chain = await seedChain({ total, perBlock, tail: TAIL, fresh: freshChain });
const { anvil, contract, deploymentBlock } = chain;
try {
  console.log(
    `chain: ${total} events, ${perBlock} per block, blocks ${deploymentBlock}..${chain.head} ` +
      `(${TAIL} empty at the end); ${chain.cached ? 'loaded from the cache' : `seeded in ${fmt(chain.seedSeconds, 1)} s`}; ` +
      `${rounds} round(s) per database kind, FINALITY_DEPTH ${finalityDepth}`,
  );
  const logger = createLogger({ service: 'bench', level: 'warn' });
  const databaseKind = (kind: Kind) => (kind === 'pglite' ? 'pglite (on disk)' : 'postgres');

  async function onFresh<T>(kind: Kind, run: (database: BenchDatabase) => Promise<T>) {
    const database = await freshDatabase(databaseKind(kind));
    try {
      return await run(database);
    } finally {
      await closeDatabase(database);
    }
  }

  /** The indexer as deployed: its own HTTP client unless `client` is given (to count calls). */
  const ours = (kind: Kind, client?: PublicClient) =>
    onFresh(kind, async (database) => {
      const prefix = testRedisPrefix('bench');
      const redis = createRedisConnection(TEST_REDIS_URL);
      try {
        const app = createApp({
          config: testConfig({
            rpcUrl: anvil.rpcUrl,
            contract,
            deploymentBlock: Number(deploymentBlock),
            redisPrefix: prefix,
            finalityDepth,
            maxLogRange: 2000,
            confirmations: 0,
          }),
          logger,
          redis,
          keys: createKeys(prefix),
          db: database.db,
          ...(client && { publicClient: client }),
        });
        const t0 = performance.now();
        await app.syncToHead();
        const seconds = (performance.now() - t0) / 1000;
        await app.stop();
        const stored = await countEvents(database.db);
        if (stored !== total) throw new Error(`indexer stored ${stored} of ${total} events`);
        return stored / seconds;
      } finally {
        redis.disconnect();
        await deleteRedisPrefix(prefix);
      }
    });

  const naiveRun = (kind: Kind) =>
    onFresh(kind, async (database) => {
      const client = createPublicClient({ transport: http(anvil.rpcUrl, { retryCount: 0 }) });
      const t0 = performance.now();
      const events = await naive(client, database.db, contract, deploymentBlock);
      const seconds = (performance.now() - t0) / 1000;
      const stored = await countEvents(database.db);
      if (stored !== total || events !== total)
        throw new Error(`naive loop stored ${stored} of ${total} events`);
      return stored / seconds;
    });

  for (const kind of kinds) {
    // One untimed run first (JIT, pools, PGlite's wasm), counting our RPC calls.
    const counting = countingClient(anvil.rpcUrl);
    await ours(kind, counting.client);
    const calls = [...counting.counts]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([method, n]) => `${method} ${n}`)
      .join(', ');

    const ponderRuns: PonderRun[] = [];
    const versusPonder = await alternate({
      rounds,
      ours: async (round) => {
        const rate = await ours(kind);
        console.log(`${kind} round ${round + 1}: ours ${Math.round(rate)} events/s`);
        return rate;
      },
      baseline: async (round) => {
        const run = await runPonder({
          kind,
          rpcUrl: anvil.rpcUrl,
          contract,
          startBlock: deploymentBlock,
        });
        if (run.events !== total) throw new Error(`ponder stored ${run.events} of ${total} events`);
        ponderRuns.push(run);
        console.log(
          `${kind} round ${round + 1}: ponder ${Math.round(run.events / run.seconds)} events/s ` +
            `(${fmt(run.seconds)} s; startup ${fmt(run.startupSeconds, 1)} s, not counted)`,
        );
        return run.events / run.seconds;
      },
    });
    const startup = summarize(ponderRuns.map((run) => run.startupSeconds));
    reportRow(
      compareRow({
        id: `backfill-${kind}`,
        what: `Indexer backfill, ${total.toLocaleString('en-US')} BatchAnchored events (${perBlock} per block), ${kind}`,
        unit: 'events/s',
        better: 'higher',
        baselineName: 'Ponder 1.0',
        runs: versusPonder,
        bar: { text: '≥ 3 × Ponder', ratio: 3 },
        note:
          `FINALITY_DEPTH ${finalityDepth}; Ponder timed from its historical sync start to /ready, ` +
          `its startup (median ${fmt(startup.median, 1)} s) not counted; our calls: ${calls}`,
      }),
    );

    const versusNaive = await alternate({
      rounds,
      ours: () => ours(kind),
      baseline: () => naiveRun(kind),
    });
    reportRow(
      compareRow({
        id: `backfill-naive-${kind}`,
        what: `Indexer backfill vs a naive getLogs + INSERT loop, ${total.toLocaleString('en-US')} events, ${kind}`,
        unit: 'events/s',
        better: 'higher',
        baselineName: 'naive loop (no reorg safety)',
        runs: versusNaive,
        note: `naive: ${NAIVE_RANGE}-block eth_getLogs ranges, one transaction each; median ratio is what the safety costs`,
      }),
    );
  }
} finally {
  await anvil.stop();
}
