// The Ponder app of the backfill benchmark's baseline (apps/chain-indexer/bench/backfill.ts
// starts it with `ponder start`; it is not run on its own). Everything comes from the
// environment the benchmark sets: the anvil RPC, the StreamAnchor address and deploy block,
// and the database (PGlite directory, or DATABASE_URL for Postgres).
import { createConfig } from 'ponder';
import { http } from 'viem';
import { batchAnchoredAbi } from './abi';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`bench-ponder: ${name} is not set`);
  return value;
};

export default createConfig({
  database: process.env.DATABASE_URL
    ? { kind: 'postgres', connectionString: process.env.DATABASE_URL }
    : { kind: 'pglite', directory: env('PONDER_PGLITE_DIR') },
  networks: {
    anvil: {
      chainId: 31337,
      transport: http(env('PONDER_RPC_URL')),
      // The default (50 requests/s) is meant for hosted RPCs; a local anvil takes all it gets.
      maxRequestsPerSecond: 100_000,
      pollingInterval: 100,
    },
  },
  contracts: {
    StreamAnchor: {
      network: 'anvil',
      abi: batchAnchoredAbi,
      address: env('PONDER_CONTRACT') as `0x${string}`,
      startBlock: Number(env('PONDER_START_BLOCK')),
    },
  },
});
