// Backfill benchmark (not a test): anchors N batches on a fresh anvil, then compares, on
// fresh databases of each kind (PGlite on disk, Postgres), the indexer's backfill
// (`app.syncToHead()` from the deployment block: range scans, then the last FINALITY_DEPTH
// blocks header by header, ledger and cursor in one transaction per step) against a
// "raw transport" baseline (eth_getLogs in 2000-block ranges + batched inserts into
// anchor_events, one transaction per range, nothing else).
//
//   cd apps/chain-indexer && npx tsx bench/backfill.ts [N=2000] [perBlock=1] [rounds=5] [finalityDepth=12]
//
// perBlock=1 mines one anchoring transaction per block (anvil automine); a larger value
// turns automine off and mines perBlock transactions per block. Needs Redis and Postgres
// on 127.0.0.1 (as the tests do). The events belong to no batch of the database, so this
// measures reading logs, inserting anchor_events, the ledger's statements and the cursor.
//
// The machine may be shared: absolute events/s are noisy, so each round runs baseline then
// ours back to back on identical fresh databases, and the figure to read is the median of
// the per-round ratio ours/baseline. Database creation is outside the timings.
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
import type { PublicClient } from 'viem';
import { createApp } from '../src/app';
import { chainClients, testConfig } from '../src/test-fixtures';
import {
  anchorRandomBatches,
  type BenchDatabase,
  closeDatabase,
  countingClient,
  type DatabaseKind,
  fmt,
  freshDatabase,
  median,
} from './support';

const total = Number(process.argv[2] ?? 2000);
const perBlock = Number(process.argv[3] ?? 1);
const rounds = Number(process.argv[4] ?? 5);
const finalityDepth = Number(process.argv[5] ?? 12);
const kinds: DatabaseKind[] = (process.env.BENCH_KINDS?.split(',') as DatabaseKind[]) ?? [
  'pglite (on disk)',
  'postgres',
];
/** Same width as the indexer's MAX_LOG_RANGE in testConfig. */
const RANGE = 2000n;
/** Rows per INSERT, as the indexer's store. */
const CHUNK = 1000;

interface Run {
  events: number;
  seconds: number;
  calls: Map<string, number>;
  rpcMs: number;
}

/** The baseline: plain eth_getLogs ranges and batched inserts, one transaction per range. */
async function baseline(
  client: PublicClient,
  db: Kysely<Database>,
  contract: `0x${string}`,
  fromBlock: bigint,
): Promise<number> {
  const head = await client.getBlockNumber({ cacheTime: 0 });
  let events = 0;
  for (let from = fromBlock; from <= head; from += RANGE) {
    const to = from + RANGE - 1n < head ? from + RANGE - 1n : head;
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

const callsText = (calls: Map<string, number>, events: number) =>
  [...calls]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([method, n]) => `${method} ${n}`)
    .join(', ') +
  ` = ${[...calls.values()].reduce((a, b) => a + b, 0)} calls (${fmt(
    ([...calls.values()].reduce((a, b) => a + b, 0) * 1000) / Math.max(1, events),
  )} per 1k events)`;

const anvil = await startAnvil({ args: ['--gas-limit', '1000000000'] });
try {
  const chain = chainClients(anvil.rpcUrl);
  const { publicClient, walletClient } = chain;
  const deployed = await deployStreamAnchor({ walletClient, publicClient });
  const contract = deployed.address.toLowerCase() as `0x${string}`;

  const started = performance.now();
  await anchorRandomBatches(chain, contract, total, perBlock);
  const head = await publicClient.getBlockNumber({ cacheTime: 0 });
  console.log(
    `anchored ${total} batches in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `blocks ${deployed.blockNumber}..${head} (${perBlock} per block); ` +
      `${rounds} rounds per database kind, FINALITY_DEPTH ${finalityDepth}`,
  );

  const logger = createLogger({ service: 'bench', level: 'warn' });

  async function runBaseline(database: BenchDatabase): Promise<Run> {
    const counting = countingClient(anvil.rpcUrl);
    const t0 = performance.now();
    const events = await baseline(counting.client, database.db, contract, deployed.blockNumber);
    const seconds = (performance.now() - t0) / 1000;
    const stored = await countEvents(database.db);
    if (stored !== total || events !== total)
      throw new Error(`baseline stored ${stored} of ${total} events`);
    return { events, seconds, calls: counting.snapshot(), rpcMs: counting.rpcMs };
  }

  async function runOurs(database: BenchDatabase): Promise<Run> {
    const counting = countingClient(anvil.rpcUrl);
    const prefix = testRedisPrefix('bench');
    const redis = createRedisConnection(TEST_REDIS_URL);
    try {
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
        db: database.db,
        publicClient: counting.client,
      });
      const t0 = performance.now();
      await app.syncToHead();
      const seconds = (performance.now() - t0) / 1000;
      await app.stop();
      const stored = await countEvents(database.db);
      if (stored !== total) throw new Error(`indexer stored ${stored} of ${total} events`);
      return { events: stored, seconds, calls: counting.snapshot(), rpcMs: counting.rpcMs };
    } finally {
      redis.disconnect();
      await deleteRedisPrefix(prefix);
    }
  }

  async function onFresh(kind: DatabaseKind, run: (database: BenchDatabase) => Promise<Run>) {
    const database = await freshDatabase(kind);
    try {
      return await run(database);
    } finally {
      await closeDatabase(database);
    }
  }

  const summary: string[] = [];
  for (const kind of kinds) {
    // One untimed pair first: JIT, connection pools and PGlite's wasm warm up.
    await onFresh(kind, runBaseline);
    await onFresh(kind, runOurs);
    const base: Run[] = [];
    const ours: Run[] = [];
    for (let round = 1; round <= rounds; round++) {
      const b = await onFresh(kind, runBaseline);
      const o = await onFresh(kind, runOurs);
      base.push(b);
      ours.push(o);
      console.log(
        `${kind} round ${round}: baseline ${Math.round(b.events / b.seconds)} events/s ` +
          `(${fmt(b.seconds)} s, rpc ${Math.round(b.rpcMs)} ms), ` +
          `ours ${Math.round(o.events / o.seconds)} events/s ` +
          `(${fmt(o.seconds)} s, rpc ${Math.round(o.rpcMs)} ms), ` +
          `ratio ${fmt(b.seconds / o.seconds)}`,
      );
    }
    const rate = (runs: Run[]) => median(runs.map((r) => r.events / r.seconds));
    const ratio = median(base.map((b, i) => b.seconds / ours[i]!.seconds));
    const line =
      `${kind}: baseline ${Math.round(rate(base))} events/s, ours ${Math.round(rate(ours))} events/s, ` +
      `ours/baseline ${fmt(ratio)} (median of ${rounds} rounds)`;
    summary.push(line);
    summary.push(`  rpc baseline: ${callsText(base[0]!.calls, base[0]!.events)}`);
    summary.push(`  rpc ours:     ${callsText(ours[0]!.calls, ours[0]!.events)}`);
    summary.push(
      `  median time in rpc: baseline ${Math.round(median(base.map((r) => r.rpcMs)))} ms of ` +
        `${Math.round(median(base.map((r) => r.seconds * 1000)))} ms, ours ` +
        `${Math.round(median(ours.map((r) => r.rpcMs)))} ms of ` +
        `${Math.round(median(ours.map((r) => r.seconds * 1000)))} ms`,
    );
  }
  console.log(
    `\nbackfill of ${total} events (${perBlock} per block), FINALITY_DEPTH ${finalityDepth}:`,
  );
  for (const line of summary) console.log(line);
} finally {
  await anvil.stop();
}
