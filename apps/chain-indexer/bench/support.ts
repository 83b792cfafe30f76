// Shared pieces of the benchmarks (not part of the service, not a test).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { streamAnchorAbi } from '@streamanchor/contracts';
import { type DatabaseHandle, migrateToLatest, openDatabase } from '@streamanchor/db';
import { createTestDatabase } from '@streamanchor/testing';
import { createPublicClient, custom, encodeFunctionData, http, type PublicClient } from 'viem';
import { anvilChain, type ChainClients, mine, randomHex32 } from '../src/test-fixtures';

/** A public client whose every JSON-RPC call is counted by method (HTTP underneath). */
export interface CountingClient {
  client: PublicClient;
  /** Calls per method since the last reset. */
  readonly counts: Map<string, number>;
  total(): number;
  /** Wall time spent waiting for RPC responses since the last reset (ms; time with at least one call in flight). */
  readonly rpcMs: number;
  reset(): void;
  /** A copy of the counts, for differences. */
  snapshot(): Map<string, number>;
}

export function countingClient(rpcUrl: string): CountingClient {
  const chain = anvilChain(rpcUrl);
  // The http transport's own EIP-1193 request function: one HTTP request per call, no retries.
  const inner = http(rpcUrl, { retryCount: 0 })({ chain, retryCount: 0 });
  const counts = new Map<string, number>();
  // Wall time with at least one call in flight (concurrent header reads count once).
  let rpcMs = 0;
  let inFlight = 0;
  let since = 0;
  const transport = custom(
    {
      async request({ method, params }: { method: string; params?: unknown }) {
        counts.set(method, (counts.get(method) ?? 0) + 1);
        if (inFlight++ === 0) since = performance.now();
        try {
          return await inner.request({ method, params } as never);
        } finally {
          if (--inFlight === 0) rpcMs += performance.now() - since;
        }
      },
    },
    { retryCount: 0 },
  );
  return {
    client: createPublicClient({ chain, transport }) as PublicClient,
    counts,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    get rpcMs() {
      return rpcMs;
    },
    reset: () => {
      counts.clear();
      rpcMs = 0;
    },
    snapshot: () => new Map(counts),
  };
}

export type BenchDatabase = DatabaseHandle & { cleanup?: () => void };
export type DatabaseKind = 'pglite (on disk)' | 'pglite (memory)' | 'postgres';

/** A fresh, migrated database of the kind (PGlite in a temp dir, or a throwaway Postgres db). */
export async function freshDatabase(kind: DatabaseKind): Promise<BenchDatabase> {
  if (kind === 'postgres') return createTestDatabase('postgres');
  if (kind === 'pglite (memory)') return createTestDatabase('pglite');
  const dir = mkdtempSync(join(tmpdir(), 'sa-bench-pglite-'));
  const handle = await openDatabase({ pgliteDir: dir });
  await migrateToLatest(handle.db);
  return { ...handle, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function closeDatabase(database: BenchDatabase): Promise<void> {
  await database.close();
  database.cleanup?.();
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const fmt = (value: number, digits = 2) =>
  Number.isFinite(value) ? value.toFixed(digits) : String(value);

/**
 * Anchors `total` batches of random ids on anvil, `perBlock` transactions per block (1:
 * automine, one per block), and waits until the last one is mined.
 */
export async function anchorRandomBatches(
  { publicClient, walletClient }: ChainClients,
  contract: `0x${string}`,
  total: number,
  perBlock: number,
): Promise<void> {
  if (perBlock > 1)
    await publicClient.request({ method: 'evm_setAutomine' as never, params: [false] as never });
  let nonce = await publicClient.getTransactionCount({
    address: walletClient.account.address,
    blockTag: 'pending',
  });
  const fees = await publicClient.estimateFeesPerGas();
  let last: `0x${string}` | undefined;
  for (let i = 0; i < total; i++) {
    last = await walletClient.sendTransaction({
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
    if (perBlock > 1 && (i + 1) % perBlock === 0) await mine(publicClient, 1);
  }
  if (perBlock > 1) {
    await mine(publicClient, 1);
    await publicClient.request({ method: 'evm_setAutomine' as never, params: [true] as never });
  }
  if (last) await publicClient.waitForTransactionReceipt({ hash: last, pollingInterval: 50 });
}
