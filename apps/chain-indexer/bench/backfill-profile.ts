// Rough profile of one backfill (not a test): where `app.syncToHead()` spends its time,
// step by step (range scans far below the head, header-by-header near it), split into RPC
// time (by method) and database time (by statement), on a fresh database of each kind.
//
//   cd apps/chain-indexer && npx tsx bench/backfill-profile.ts [N=2000] [perBlock=1] [finalityDepth=12]
//
// Statements are timed by a Kysely plugin (from transformQuery to transformResult of the
// same query id), so BEGIN/COMMIT are not in the per-statement figures (they are in
// "other"). One run per kind: the figures are noisy on a shared machine, read the shape.
import { createKeys, createRedisConnection } from '@streamanchor/bus';
import { deployStreamAnchor } from '@streamanchor/contracts';
import type { Database } from '@streamanchor/db';
import { createLogger } from '@streamanchor/service-kit';
import {
  deleteRedisPrefix,
  startAnvil,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import type { Kysely, KyselyPlugin, OperationNode, QueryId, RootOperationNode } from 'kysely';
import { createApp } from '../src/app';
import { chainClients, testConfig } from '../src/test-fixtures';
import {
  anchorRandomBatches,
  closeDatabase,
  countingClient,
  type DatabaseKind,
  fmt,
  freshDatabase,
} from './support';

const total = Number(process.argv[2] ?? 2000);
const perBlock = Number(process.argv[3] ?? 1);
const finalityDepth = Number(process.argv[4] ?? 12);
const kinds: DatabaseKind[] = (process.env.BENCH_KINDS?.split(',') as DatabaseKind[]) ?? [
  'pglite (on disk)',
  'postgres',
];

/** A short name for a statement: kind and table, or the start of a raw SQL text. */
function label(node: RootOperationNode): string {
  const n = node as OperationNode & Record<string, unknown>;
  const table = (t: unknown): string => {
    const x = t as { table?: { identifier?: { name?: string } }; froms?: unknown[] } | undefined;
    return x?.table?.identifier?.name ?? '?';
  };
  switch (n.kind) {
    case 'InsertQueryNode':
      return `insert ${table(n.into)}`;
    case 'UpdateQueryNode':
      return `update ${table(n.table)}`;
    case 'DeleteQueryNode':
      return `delete ${table((n.from as { froms: unknown[] }).froms[0])}`;
    case 'SelectQueryNode':
      return `select ${table((n.from as { froms: unknown[] } | undefined)?.froms[0])}`;
    case 'RawNode': {
      const text = (n.sqlFragments as string[]).join('$').replace(/\s+/g, ' ').trim();
      if (text.includes('with v(batch_id')) return 'ledger.markIncluded';
      if (text.startsWith("with changed as ( update batches set status = 'final'"))
        return 'ledger.finalize';
      return `raw ${text.slice(0, 40)}`;
    }
    default:
      return n.kind;
  }
}

function timingPlugin() {
  const started = new Map<QueryId, { at: number; label: string }>();
  const byLabel = new Map<string, { n: number; ms: number }>();
  const plugin: KyselyPlugin = {
    transformQuery({ node, queryId }) {
      started.set(queryId, { at: performance.now(), label: label(node) });
      return node;
    },
    async transformResult({ result, queryId }) {
      const s = started.get(queryId);
      if (s) {
        started.delete(queryId);
        const entry = byLabel.get(s.label) ?? { n: 0, ms: 0 };
        entry.n += 1;
        entry.ms += performance.now() - s.at;
        byLabel.set(s.label, entry);
      }
      return result as never;
    },
  };
  return {
    plugin,
    take() {
      const copy = new Map(byLabel);
      byLabel.clear();
      return copy;
    },
  };
}

const anvil = await startAnvil({ args: ['--gas-limit', '1000000000'] });
try {
  const chain = chainClients(anvil.rpcUrl);
  const { publicClient, walletClient } = chain;
  const deployed = await deployStreamAnchor({ walletClient, publicClient });
  const contract = deployed.address.toLowerCase() as `0x${string}`;
  await anchorRandomBatches(chain, contract, total, perBlock);
  const head = await publicClient.getBlockNumber({ cacheTime: 0 });
  console.log(
    `${total} events in blocks ${deployed.blockNumber}..${head}; FINALITY_DEPTH ${finalityDepth}`,
  );

  const logger = createLogger({ service: 'bench', level: 'warn' });
  for (const kind of kinds) {
    // Twice: the first run warms up; the second is printed.
    for (const print of [false, true]) {
      const database = await freshDatabase(kind);
      const prefix = testRedisPrefix('bench');
      const redis = createRedisConnection(TEST_REDIS_URL);
      const timing = timingPlugin();
      const counting = countingClient(anvil.rpcUrl);
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
          db: (database.db as Kysely<Database>).withPlugin(timing.plugin),
          publicClient: counting.client,
        });
        if (print) console.log(`\n${kind}:`);
        let step = 0;
        let sum = 0;
        for (;;) {
          counting.reset();
          const t0 = performance.now();
          const result = await app.syncOnce();
          const ms = performance.now() - t0;
          sum += ms;
          const statements = timing.take();
          const dbMs = [...statements.values()].reduce((a, b) => a + b.ms, 0);
          if (print) {
            console.log(
              `  step ${++step} ${result.mode} → ${result.cursor}: ${result.events} events, ${fmt(ms, 1)} ms = ` +
                `rpc ${fmt(counting.rpcMs, 1)} ms (${[...counting.counts].map(([m, c]) => `${m} ${c}`).join(', ')}) + ` +
                `statements ${fmt(dbMs, 1)} ms + other ${fmt(ms - counting.rpcMs - dbMs, 1)} ms (decode, BEGIN/COMMIT, JS)`,
            );
            for (const [name, { n, ms: t }] of [...statements].sort((a, b) => b[1].ms - a[1].ms))
              console.log(
                `      ${name.padEnd(28)} ×${String(n).padEnd(3)} ${fmt(t, 1).padStart(7)} ms`,
              );
          }
          if (result.caughtUp) break;
        }
        if (print)
          console.log(`  total ${fmt(sum, 1)} ms = ${Math.round((total * 1000) / sum)} events/s`);
        await app.stop();
      } finally {
        redis.disconnect();
        await deleteRedisPrefix(prefix);
        await closeDatabase(database);
      }
    }
  }
} finally {
  await anvil.stop();
}
