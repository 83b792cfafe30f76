import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Receipt } from '@streamanchor/protocol';
import { type Stack, startStack } from '@streamanchor/stack';
import {
  createThrowawayPostgres,
  launchChromium,
  TEST_REDIS_URL,
  type ThrowawayPostgres,
  testRedisPrefix,
} from '@streamanchor/testing';
import type { Page } from 'playwright-core';
import { createPublicClient, type Hex, http, parseAbiItem } from 'viem';
import type {
  AnchoringCounts,
  DemoCounts,
  DemoRecord,
  InvalidKind,
  NackEntry,
  StreamAnchorDemoApi,
} from '../src/demo';

declare global {
  interface Window {
    streamAnchorDemo: StreamAnchorDemoApi;
  }
}

export interface DemoHarness {
  stack: Stack;
  page: Page;
  /** Every line the stack and its services printed. */
  output: string[];
  /** Uncaught errors in the page. */
  pageErrors: string[];
  publish(n: number, topic?: string): Promise<{ acked: number; nacked: number; failed: number }>;
  counts(): Promise<DemoCounts>;
  anchoring(): Promise<AnchoringCounts>;
  records(): Promise<DemoRecord[]>;
  nacks(): Promise<NackEntry[]>;
  sendInvalid(kind: InvalidKind): Promise<string>;
  /** Waits until `n` receipts were checked in the page (verified or failed). */
  waitForVerdicts(n: number, timeoutMs?: number): Promise<DemoCounts>;
  /** Waits until `n` records hold a final receipt (the stack's FINALITY_DEPTH is E2E_FINALITY_DEPTH). */
  waitForFinal(n: number, timeoutMs?: number): Promise<AnchoringCounts>;
  close(): Promise<void>;
}

/**
 * The indexer's finality depth in these tests: 3 blocks (1 block/s) instead of the default
 * 12, so records reach `final` within seconds.
 */
export const E2E_FINALITY_DEPTH = 3;

/** A UDP port that was free a moment ago (for the relay's one muxed ICE port). */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/**
 * The whole stack (own Redis prefix, own data folder, own anvil; Postgres in a throwaway
 * database or PGlite) and a real Chromium with the demo page open and connected.
 */
export async function openDemo({
  database,
  signal,
}: {
  database: 'postgres' | 'pglite';
  /** Abort (e.g. from afterAll after a hook timeout) to stop a start-up still in progress. */
  signal?: AbortSignal;
}): Promise<DemoHarness> {
  const output: string[] = [];
  const pageErrors: string[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), `sa-e2e-${database}-`));
  const postgres: ThrowawayPostgres | undefined =
    database === 'postgres' ? await createThrowawayPostgres('e2e') : undefined;
  const cleanups: (() => Promise<void>)[] = [
    async () => rmSync(dataDir, { recursive: true, force: true }),
  ];
  if (postgres) cleanups.push(() => postgres.drop());
  const close = async () => {
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((error) => console.error(error));
  };
  try {
    const stack = await startStack({
      env: {
        ...process.env,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: testRedisPrefix('e2e'),
        DATA_DIR: dataDir,
        DATABASE_URL: postgres?.url,
        HOST: '127.0.0.1',
        PORT: '0',
        ANVIL_PORT: '0',
        ANVIL_BLOCK_TIME: '1',
        FINALITY_DEPTH: String(E2E_FINALITY_DEPTH),
        JWT_SECRET: undefined,
        // Production-like with Postgres: every session muxed on one UDP port. On PGlite the
        // relay's default (an ephemeral port per session) is exercised instead.
        ICE_UDP_PORT: database === 'postgres' ? String(await freeUdpPort()) : undefined,
        LOG_LEVEL: 'warn',
      },
      output: (line) => {
        output.push(line);
        if (/^\[stack\]|WARN|ERROR|FATAL/.test(line)) console.log(line);
      },
      clearRedisOnStop: true,
      signal,
    });
    cleanups.push(() => stack.stop());

    if (signal?.aborted) throw new Error('openDemo aborted');
    const browser = await launchChromium();
    cleanups.push(() => browser.close());
    const page = await browser.context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(stack.demoUrl);
    await page.waitForFunction(
      () =>
        window.streamAnchorDemo &&
        ['open', 'error', 'closed'].includes(window.streamAnchorDemo.state),
      null,
      { timeout: 60_000, polling: 100 },
    );
    const state = await page.evaluate(() => ({
      state: window.streamAnchorDemo.state,
      error: window.streamAnchorDemo.error,
    }));
    if (state.state !== 'open') {
      throw new Error(
        `the demo page did not connect: ${state.state} ${state.error ?? ''}\n${output.slice(-30).join('\n')}`,
      );
    }

    return {
      stack,
      page,
      output,
      pageErrors,
      publish: (n, topic) =>
        page.evaluate(([count, t]) => window.streamAnchorDemo.publish(count, t), [
          n,
          topic,
        ] as const),
      counts: () => page.evaluate(() => window.streamAnchorDemo.counts),
      anchoring: () => page.evaluate(() => window.streamAnchorDemo.anchoring),
      records: () => page.evaluate(() => window.streamAnchorDemo.records()),
      nacks: () => page.evaluate(() => window.streamAnchorDemo.nacks()),
      sendInvalid: (kind) => page.evaluate((k) => window.streamAnchorDemo.sendInvalid(k), kind),
      async waitForVerdicts(n, timeoutMs = 180_000) {
        try {
          await page.waitForFunction(
            (target) => {
              const counts = window.streamAnchorDemo.counts;
              return counts.verified + counts.failed >= target;
            },
            n,
            { timeout: timeoutMs, polling: 250 },
          );
        } catch (error) {
          const counts = await page.evaluate(() => window.streamAnchorDemo.counts);
          throw new Error(
            `waiting for ${n} verified receipts: ${(error as Error).message}\ncounts ${JSON.stringify(counts)}\n${output.slice(-40).join('\n')}`,
          );
        }
        return page.evaluate(() => window.streamAnchorDemo.counts);
      },
      async waitForFinal(n, timeoutMs = 120_000) {
        try {
          await page.waitForFunction(
            (target) => window.streamAnchorDemo.anchoring.final >= target,
            n,
            { timeout: timeoutMs, polling: 250 },
          );
        } catch (error) {
          const anchoring = await page.evaluate(() => window.streamAnchorDemo.anchoring);
          throw new Error(
            `waiting for ${n} final receipts: ${(error as Error).message}\nanchoring ${JSON.stringify(anchoring)}\n${output.slice(-40).join('\n')}`,
          );
        }
        return page.evaluate(() => window.streamAnchorDemo.anchoring);
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

const batchAnchored = parseAbiItem(
  'event BatchAnchored(bytes32 indexed batchId, bytes32 indexed merkleRoot, uint32 recordCount, address indexed writer)',
);

export interface AnchoredBatch {
  merkleRoot: Hex;
  recordCount: number;
  writer: Hex;
  txHash: Hex;
  blockNumber: number;
}

/**
 * Every BatchAnchored event of the stack's contract, read straight from the chain with
 * viem (the test's own, independent view: the event signature is the documented one).
 */
export async function anchoredBatches(stack: Stack): Promise<Map<Hex, AnchoredBatch[]>> {
  const client = createPublicClient({ transport: http(stack.urls.rpc) });
  const logs = await client.getLogs({
    address: stack.contractAddress,
    event: batchAnchored,
    fromBlock: BigInt(stack.deploymentBlock),
    toBlock: 'latest',
  });
  const batches = new Map<Hex, AnchoredBatch[]>();
  for (const log of logs) {
    const batchId = log.args.batchId as Hex;
    const list = batches.get(batchId) ?? [];
    list.push({
      merkleRoot: log.args.merkleRoot as Hex,
      recordCount: Number(log.args.recordCount),
      writer: log.args.writer as Hex,
      txHash: log.transactionHash,
      blockNumber: Number(log.blockNumber),
    });
    batches.set(batchId, list);
  }
  return batches;
}

export type { Receipt };
