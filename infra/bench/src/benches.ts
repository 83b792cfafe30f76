/**
 * Every benchmark `pnpm bench` runs, in order. Each is a script that measures our path and
 * its baseline alternately in one run and prints its rows through `reportRow`
 * (@streamanchor/testing); `quick` are the arguments of its short form (`pnpm bench --quick`,
 * run by `pnpm test` so the benchmarks never rot).
 */
export interface BenchSpec {
  /** `pnpm bench --only <id>,…` */
  id: string;
  /** What its rows measure, for the progress lines. */
  title: string;
  /** Script path from the repository root, run with tsx. */
  script: string;
  /** Arguments of the full run. */
  full: string[];
  /** Arguments of the quick run (CI). */
  quick: string[];
}

export const BENCHES: readonly BenchSpec[] = [
  {
    id: 'merkle',
    title: 'Merkle tree + proofs against @openzeppelin/merkle-tree and the keccak ceiling',
    script: 'packages/protocol/bench/merkle.ts',
    full: [],
    quick: ['--quick'],
  },
  {
    id: 'verify',
    title: 'receipt verification against @openzeppelin/merkle-tree',
    script: 'packages/protocol/bench/verify.ts',
    full: [],
    quick: ['--quick'],
  },
  {
    id: 'sessions',
    title: 'session setup (POST → hello), concurrency 10 and 50, against a bare answerer',
    script: 'infra/bench/src/sessions.ts',
    full: [],
    // One round: the quick run checks that it runs and prints its rows (CI's time is short).
    quick: ['--quick', '--rounds', '1'],
  },
  {
    id: 'backfill',
    title: 'indexer backfill (100k BatchAnchored events) against Ponder and a naive getLogs loop',
    script: 'apps/chain-indexer/bench/backfill.ts',
    full: [],
    quick: ['--quick'],
  },
  {
    id: 'pipeline',
    title:
      'whole pipeline (relay → writer → anchor → indexer → receipt) on Postgres and PGlite, against the relay ack rate',
    script: 'infra/bench/src/pipeline.ts',
    full: [],
    quick: ['--quick', '--step-s', '6'],
  },
  {
    id: 'relay-ingest',
    title: 'relay ingest (acked records/s, ack p99) against a bare node-datachannel sink',
    script: 'apps/rtc-relay/bench/ingest.ts',
    full: [],
    quick: ['--quick'],
  },
  {
    id: 'fanout',
    title:
      'subscription fan-out (publish → subscriber p50/p99 on one relay and across two, most subscribers at 100 records/s with p99 ≤ 100 ms) against a bare node-datachannel forwarder',
    script: 'apps/rtc-relay/bench/fanout.ts',
    full: [],
    quick: ['--quick', '--rounds', '1'],
  },
];
