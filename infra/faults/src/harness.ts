import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Stack, startStack } from '@streamanchor/stack';
import {
  createThrowawayPostgres,
  type RpcProxy,
  startRpcProxy,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import pg from 'pg';
import { createPublicClient, http, type PublicClient } from 'viem';
import { checkInvariants, type InvariantReport } from './invariants';
import { Publisher } from './publisher-client';

/** The proxy path each chain service uses (`/writer`, `/indexer`). */
export const PROXY_CLIENT = {
  'chain-writer': 'writer',
  'chain-indexer': 'indexer',
  'chain-services': 'chain-services',
} as const;

export interface FaultStackOptions {
  label: string;
  /** The indexer's FINALITY_DEPTH; every reorg a scenario fires must stay below it. */
  finalityDepth: number;
  /** Extra environment for the services. */
  env?: Record<string, string | undefined>;
  /** rtc-relay processes (default 1): services `rtc-relay`, `rtc-relay-2`, … (startStack). */
  relays?: number;
  /** The Redis the services use (default the test Redis, TEST_REDIS_URL). */
  redisUrl?: string;
}

export interface FaultStack {
  stack: Stack;
  proxy: RpcProxy;
  /** anvil, directly (never through the proxy): what the invariants read. */
  chain: PublicClient;
  pool: pg.Pool;
  finalityDepth: number;
  /** Every line the stack and its services printed. */
  output: string[];
  publishers: Publisher[];
  kills: string[];
  startPublisher(name: string, rate: number): Publisher;
  /** Every recordId any publisher of this stack got an ack for. */
  acked(): Set<string>;
  kill9(service: string): Promise<void>;
  restart(service: string): Promise<void>;
  check(): Promise<InvariantReport>;
  /** Polls the invariants until settled or `timeoutMs`; returns the last report. */
  settle(timeoutMs: number): Promise<InvariantReport & { waitedMs: number }>;
  /** One line: acked, stored, batches, reorgs fired, kills, final receipts. */
  summary(report: InvariantReport): string;
  /** Log lines of interest (reorg handling, warnings, errors), the last `n`. */
  interesting(n?: number): string[];
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The whole stack with every service in its own process (Postgres in a throwaway database),
 * the writer and the indexer reaching anvil through a fault proxy (`/writer`, `/indexer`).
 */
export async function startFaultStack(options: FaultStackOptions): Promise<FaultStack> {
  const output: string[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), `sa-faults-${options.label}-`));
  const postgres = await createThrowawayPostgres(`faults_${options.label}`);
  const cleanups: (() => Promise<void>)[] = [
    async () => rmSync(dataDir, { recursive: true, force: true }),
    () => postgres.drop(),
  ];
  const close = async () => {
    for (const cleanup of cleanups.splice(0).reverse())
      await cleanup().catch((error: Error) => console.error(`[faults] cleanup: ${error.message}`));
  };
  const started = Date.now();
  const log = (line: string) => {
    if (line.startsWith('[faults]'))
      line = `[faults] +${((Date.now() - started) / 1000).toFixed(1)}s${line.slice(8)}`;
    output.push(line);
    if (output.length > 200_000) output.splice(0, 50_000);
    if (/^\[stack\]|^\[faults\]|^\[pub|WARN|ERROR|FATAL|REORG/i.test(line))
      process.stdout.write(`${line}\n`);
  };
  let proxyPromise: Promise<RpcProxy> | undefined;
  try {
    const stack = await startStack({
      env: {
        ...process.env,
        REDIS_URL: options.redisUrl ?? TEST_REDIS_URL,
        REDIS_PREFIX: testRedisPrefix(`faults-${options.label}`),
        DATA_DIR: dataDir,
        DATABASE_URL: postgres.url,
        HOST: '127.0.0.1',
        PORT: '0',
        ANVIL_PORT: '0',
        ANVIL_BLOCK_TIME: '1',
        JWT_SECRET: undefined,
        ICE_UDP_PORT: undefined,
        LOG_LEVEL: 'info',
        FINALITY_DEPTH: String(options.finalityDepth),
        // A tx dropped by a reorg is found again sooner (the writer re-broadcasts after this).
        TX_CONFIRM_TIMEOUT_MS: '10000',
        ...options.env,
      },
      output: log,
      relays: options.relays,
      clearRedisOnStop: true,
      rpcUrlFor: async (service, chain) => {
        proxyPromise ??= startRpcProxy({
          upstream: chain.rpcUrl,
          // Never reorg the contract away.
          protectBlock: chain.deploymentBlock,
        });
        return (await proxyPromise).urlFor(PROXY_CLIENT[service]);
      },
    });
    const proxy = await proxyPromise!;
    cleanups.push(async () => {
      await stack.stop();
      await proxy.stop();
    });
    let failure: string | undefined;
    void stack.failed.then(({ service, code, signal }) => {
      failure = `${service} exited unexpectedly (${signal ?? `exit ${code}`}); the stack stopped`;
      log(`[faults] ${failure}`);
    });
    const pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
    pool.on('error', () => {});
    cleanups.push(() => pool.end());
    const chain = createPublicClient({ transport: http(stack.urls.rpc) });
    const publishers: Publisher[] = [];
    const kills: string[] = [];
    cleanups.push(async () => {
      await Promise.all(publishers.map((p) => p.close()));
    });

    const interesting = (n = 40) =>
      output.filter((line) => /REORG|WARN|ERROR|FATAL|kill|restart|exited/i.test(line)).slice(-n);
    const acked = () => {
      const all = new Set<string>();
      for (const publisher of publishers) for (const id of publisher.acked.keys()) all.add(id);
      return all;
    };
    const check = () =>
      checkInvariants({
        pool,
        client: chain,
        chainId: stack.chainId,
        contract: stack.contractAddress,
        deploymentBlock: BigInt(stack.deploymentBlock),
        acked: acked(),
      });

    return {
      stack,
      proxy,
      chain,
      pool,
      finalityDepth: options.finalityDepth,
      output,
      publishers,
      kills,
      startPublisher(name, rate) {
        const publisher = Publisher.start({
          name: `pub-${name}`,
          api: stack.urls.api,
          token: stack.token,
          rate,
          log,
        });
        publishers.push(publisher);
        return publisher;
      },
      acked,
      async kill9(service) {
        log(`[faults] kill -9 ${service}`);
        kills.push(service);
        await stack.kill9(service);
      },
      async restart(service) {
        log(`[faults] restart ${service}`);
        await stack.restart(service);
      },
      check,
      async settle(timeoutMs) {
        const started = Date.now();
        let report: InvariantReport | undefined;
        for (;;) {
          if (failure) throw new Error(`${failure}:\n${interesting().join('\n')}`);
          try {
            report = await check();
          } catch (error) {
            // The chain moved under the reader (anvil mines every second): read again.
            log(`[faults] invariant read retried: ${(error as Error).message}`);
          }
          const waitedMs = Date.now() - started;
          if (report?.settled || (report && waitedMs > timeoutMs)) return { ...report, waitedMs };
          if (!report && waitedMs > timeoutMs) throw new Error('could not read the invariants');
          await sleep(1000);
        }
      },
      summary(report) {
        const c = report.counts;
        const receipts = publishers.reduce(
          (sum, p) => sum + [...p.receipts.values()].filter((s) => s.includes('final')).length,
          0,
        );
        return (
          `[faults] ${options.label}: acked ${c.acked}, stored ${c.stored}, batches ${c.batches} ` +
          `(final ${c.batchesFinal}), chain logs ${c.chainLogs}, anchor_events ${c.anchorEvents}, ` +
          `reorgs fired ${proxy.reorgs.length} (depths ${proxy.reorgs.map((r) => r.depth).join(',') || '-'}), ` +
          `kills ${kills.length}${kills.length ? ` (${kills.join(', ')})` : ''}, final notices ${c.noticesFinal}, ` +
          `final receipts at the publisher ${receipts}, head ${c.head}, indexer cursor ${c.indexerCursor ?? '-'}, ` +
          `violations ${report.violations.length}, pending ${report.pending.length}`
        );
      },
      interesting,
      close,
    };
  } catch (error) {
    if (proxyPromise) cleanups.push(async () => (await proxyPromise!).stop().catch(() => {}));
    await close();
    throw error;
  }
}
