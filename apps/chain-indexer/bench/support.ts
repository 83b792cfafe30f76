// Shared pieces of the benchmarks (not part of the service, not a test).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { deployStreamAnchor, streamAnchorAbi, streamAnchorBytecode } from '@streamanchor/contracts';
import { type DatabaseHandle, migrateToLatest, openDatabase } from '@streamanchor/db';
import { type Anvil, anvilBinary, createTestDatabase, startAnvil } from '@streamanchor/testing';
import { createPublicClient, custom, encodeFunctionData, http, type PublicClient } from 'viem';
import {
  anvilChain,
  type ChainClients,
  chainClients,
  mine,
  randomHex32,
} from '../src/test-fixtures';

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

/** Transactions per JSON-RPC batch request while seeding. */
const SEND_BATCH = 500;

/**
 * Anchors `total` batches of random ids on anvil, `perBlock` anchorBatch transactions per
 * block, fast: automine off, each block's transactions sent as unsigned eth_sendTransaction
 * calls from anvil's unlocked default account (anvil signs them, so no signing in JS), with
 * explicit nonces, gas and fees (no estimation), several JSON-RPC batches in flight at
 * once, then one `evm_mine`. Checks that every block got its transactions and that the last
 * one succeeded; automine is back on afterwards. About 100k events a minute on 2 cores.
 */
export async function anchorRandomBatches(
  { publicClient, walletClient }: ChainClients,
  contract: `0x${string}`,
  total: number,
  perBlock: number,
): Promise<void> {
  const rpcUrl = (publicClient.transport as { url?: string }).url;
  if (!rpcUrl) throw new Error('anchorRandomBatches: the public client has no HTTP url');
  // Concurrent requests are gathered into JSON-RPC batches of up to SEND_BATCH calls.
  const sender = createPublicClient({
    transport: http(rpcUrl, { retryCount: 0, batch: { batchSize: SEND_BATCH, wait: 0 } }),
  });
  const from = walletClient.account.address;
  let nonce = await publicClient.getTransactionCount({ address: from, blockTag: 'pending' });
  const fees = await publicClient.estimateFeesPerGas();
  const hex = (value: bigint | number) => `0x${value.toString(16)}` as const;
  await publicClient.request({ method: 'evm_setAutomine' as never, params: [false] as never });
  let last: `0x${string}` | undefined;
  try {
    for (let sent = 0; sent < total; ) {
      const count = Math.min(perBlock, total - sent);
      const hashes = await Promise.all(
        Array.from(
          { length: count },
          (_, i) =>
            sender.request({
              method: 'eth_sendTransaction' as never,
              params: [
                {
                  from,
                  to: contract,
                  data: encodeFunctionData({
                    abi: streamAnchorAbi,
                    functionName: 'anchorBatch',
                    args: [randomHex32(), randomHex32(), 1 + ((sent + i) % 1000)],
                  }),
                  nonce: hex(nonce + i),
                  gas: hex(150_000),
                  maxFeePerGas: hex(fees.maxFeePerGas * 2n),
                  maxPriorityFeePerGas: hex(fees.maxPriorityFeePerGas),
                },
              ] as never,
            }) as Promise<`0x${string}`>,
        ),
      );
      nonce += count;
      sent += count;
      last = hashes.at(-1);
      await publicClient.request({ method: 'evm_mine' as never, params: [] as never });
    }
  } finally {
    await publicClient.request({ method: 'evm_setAutomine' as never, params: [true] as never });
  }
  const pending = await publicClient.getTransactionCount({ address: from, blockTag: 'pending' });
  const mined = await publicClient.getTransactionCount({ address: from, blockTag: 'latest' });
  if (pending !== mined) throw new Error(`seeding left ${pending - mined} transactions unmined`);
  if (last) {
    const receipt = await publicClient.getTransactionReceipt({ hash: last });
    if (receipt.status !== 'success') throw new Error(`anchorBatch ${last} reverted`);
  }
}

export interface SeededChain {
  anvil: Anvil;
  contract: `0x${string}`;
  deploymentBlock: bigint;
  head: bigint;
  /** Seconds spent anchoring (0 when the chain came from the cache), and whether it did. */
  seedSeconds: number;
  cached: boolean;
}

/**
 * A fresh anvil holding StreamAnchor and `total` BatchAnchored events, `perBlock` to a block,
 * followed by `tail` empty blocks. The seeded chain is cached in the temp dir (anvil's
 * `anvil_dumpState` output, loaded back with `--load-state`), keyed by the counts, the anvil
 * binary and the contract's bytecode, so a second run skips the seeding; `fresh` ignores
 * (and rewrites) the cache.
 */
export async function seedChain(options: {
  total: number;
  perBlock: number;
  tail: number;
  fresh?: boolean;
}): Promise<SeededChain> {
  // --prune-history: no per-block state snapshots (seeding would slow down block after block).
  const args = ['--gas-limit', '1000000000', '--prune-history'];
  const key = createHash('sha256')
    .update(`v1 ${options.total} ${options.perBlock} ${options.tail} ${anvilBinary()}`)
    .update(streamAnchorBytecode)
    .digest('hex')
    .slice(0, 16);
  const dir = join(tmpdir(), 'streamanchor-bench-chains');
  const stateFile = join(dir, `${key}.json`);
  const metaFile = join(dir, `${key}.meta.json`);
  if (!options.fresh && existsSync(stateFile) && existsSync(metaFile)) {
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as Record<string, string>;
    const anvil = await startAnvil({ args: [...args, '--load-state', stateFile] });
    const head = await chainClients(anvil.rpcUrl).publicClient.getBlockNumber({ cacheTime: 0 });
    if (head === BigInt(meta.head!)) {
      return {
        anvil,
        contract: meta.contract as `0x${string}`,
        deploymentBlock: BigInt(meta.deploymentBlock!),
        head,
        seedSeconds: 0,
        cached: true,
      };
    }
    await anvil.stop(); // a stale or partial cache: seed again
  }
  const anvil = await startAnvil({ args });
  try {
    const chain = chainClients(anvil.rpcUrl);
    const deployed = await deployStreamAnchor(chain);
    const contract = deployed.address.toLowerCase() as `0x${string}`;
    const started = performance.now();
    await anchorRandomBatches(chain, contract, options.total, options.perBlock);
    // One block a request: after 100k events, `anvil_mine 32` outlasted viem's 10 s timeout.
    for (let i = 0; i < options.tail; i++) await mine(chain.publicClient, 1);
    const seedSeconds = (performance.now() - started) / 1000;
    const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    // anvil_dumpState answers gzip'd JSON as hex; --load-state takes the plain JSON. Plain
    // fetch, not viem: for 100k events the answer (~100 MB) is past viem's 10 MiB body cap.
    const response = await fetch(anvil.rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'anvil_dumpState', params: [] }),
    });
    const { result: dump, error } = (await response.json()) as {
      result?: `0x${string}`;
      error?: { message: string };
    };
    if (!dump) throw new Error(`anvil_dumpState failed: ${error?.message ?? response.status}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(stateFile, gunzipSync(Buffer.from(dump.slice(2), 'hex')));
    writeFileSync(
      metaFile,
      JSON.stringify({
        contract,
        deploymentBlock: deployed.blockNumber.toString(),
        head: head.toString(),
      }),
    );
    return {
      anvil,
      contract,
      deploymentBlock: deployed.blockNumber,
      head,
      seedSeconds,
      cached: false,
    };
  } catch (error) {
    await anvil.stop();
    throw error;
  }
}
