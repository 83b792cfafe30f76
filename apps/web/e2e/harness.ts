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
  PublishOptions,
  ReceivedRecord,
  RecordLatency,
  StreamAnchorDemoApi,
  SubscribeResult,
} from '../src/demo';

declare global {
  interface Window {
    streamAnchorDemo: StreamAnchorDemoApi;
  }
}

/** One demo page in the harness's Chromium, driven through window.streamAnchorDemo. */
export interface DemoPage {
  page: Page;
  /** Uncaught errors in the page. */
  pageErrors: string[];
  publish(
    n: number,
    topic?: string,
    options?: PublishOptions,
  ): Promise<{ acked: number; nacked: number; failed: number }>;
  counts(): Promise<DemoCounts>;
  anchoring(): Promise<AnchoringCounts>;
  records(): Promise<DemoRecord[]>;
  nacks(): Promise<NackEntry[]>;
  sendInvalid(kind: InvalidKind): Promise<string>;
  /** Waits until `n` receipts were checked in the page (verified or failed). */
  waitForVerdicts(n: number, timeoutMs?: number): Promise<DemoCounts>;
  /** Waits until `n` records hold a final receipt (the stack's FINALITY_DEPTH is E2E_FINALITY_DEPTH). */
  waitForFinal(n: number, timeoutMs?: number): Promise<AnchoringCounts>;
  /**
   * Connects the page's publisher (or subscriber) session with the stack's token, again
   * until the gateway put it on `relayId` (see `placeOn`). Resolves with the number of
   * attempts.
   */
  connectOn(side: Side, relayId: string): Promise<number>;
  subscribe(topic?: string, after?: number): Promise<SubscribeResult>;
  /** Every record the page's subscriber received, in arrival order. */
  received(): Promise<ReceivedRecord[]>;
  /** Waits until the page's subscriber received at least `n` records; returns them all. */
  waitForReceived(n: number, timeoutMs?: number): Promise<ReceivedRecord[]>;
  latencies(): Promise<RecordLatency[]>;
}

export type Side = 'publisher' | 'subscriber';

export interface DemoHarness extends DemoPage {
  stack: Stack;
  /** Every line the stack and its services printed. */
  output: string[];
  /** Another demo page, not connected (no token in its URL). */
  openPage(): Promise<DemoPage>;
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
  relays = 1,
}: {
  database: 'postgres' | 'pglite';
  /** Abort (e.g. from afterAll after a hook timeout) to stop a start-up still in progress. */
  signal?: AbortSignal;
  /** rtc-relay processes (startStack's `relays`). */
  relays?: number;
}): Promise<DemoHarness> {
  const output: string[] = [];
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
        // Production-like with Postgres: every session of a relay muxed on one UDP port (the
        // next relay on the next port). On PGlite the stack's default (an ephemeral port per
        // session) is exercised instead.
        ICE_UDP_PORT: database === 'postgres' ? String(await freeUdpPort()) : undefined,
        LOG_LEVEL: 'warn',
        // With several relays, the gateway's choice (the least loaded) follows each session
        // at once: relays tell their load every 200 ms and the gateway reads it every time.
        ...(relays > 1 ? { HEARTBEAT_MS: '200', RELAY_LIST_CACHE_MS: '0' } : {}),
      },
      relays,
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
    // Pages whose sessions only weigh on a relay (see placeOn), two sessions each.
    const ballast: { page: DemoPage; used: Side[] }[] = [];
    const addBallast = async () => {
      let spare = ballast.find((entry) => entry.used.length < 2);
      if (!spare) {
        spare = { page: await newPage(`${stack.urls.api}/`), used: [] };
        ballast.push(spare);
      }
      const side: Side = spare.used.length === 0 ? 'publisher' : 'subscriber';
      spare.used.push(side);
      await connectSide(spare.page.page, side, stack.token, output);
    };
    const newPage = async (url: string): Promise<DemoPage> => {
      const page = await browser.context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(url);
      await page.waitForFunction(() => window.streamAnchorDemo !== undefined, null, {
        timeout: 30_000,
        polling: 100,
      });
      return demoPage(page, pageErrors, stack, output, addBallast);
    };
    const main = await newPage(stack.demoUrl);
    const { page } = main;
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
      ...main,
      stack,
      output,
      openPage: () => newPage(`${stack.urls.api}/`),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Puts a session on a given relay. The gateway has no way to ask for one: it gives a new
 * session to the least loaded live relay (by the sessions each one last heartbeated), and
 * the session's route in Redis says which (`stack.relayOf`). So connect and look; when it
 * landed on another relay, that one was the less loaded: close it, weigh that relay down
 * with a ballast session (which lands there for the same reason), and try again once the
 * relays told their loads.
 */
async function placeOn(
  stack: Stack,
  relayId: string,
  connect: () => Promise<string>,
  close: () => Promise<void>,
  addBallast: () => Promise<void>,
): Promise<number> {
  const seen: string[] = [];
  for (let attempt = 1; attempt <= 12; attempt++) {
    const sessionId = await connect();
    let route: string | undefined;
    // The relay writes the route before it answers; a moment's grace all the same.
    for (let i = 0; i < 20 && route === undefined; i++) {
      route = await stack.relayOf(sessionId);
      if (route === undefined) await sleep(50);
    }
    if (route === relayId) return attempt;
    seen.push(route ?? 'no route');
    await close();
    await sleep(300);
    await addBallast();
    await sleep(300);
  }
  throw new Error(`could not place a session on ${relayId}: landed on ${seen.join(', ')}`);
}

/** Connects the page's publisher or subscriber session; resolves with its session id. */
async function connectSide(
  page: Page,
  side: Side,
  token: string,
  output: string[],
): Promise<string> {
  const state = await page.evaluate(
    async ([s, t]) => {
      const api = window.streamAnchorDemo;
      if (s === 'publisher') {
        await api.connect(t);
        return { state: api.state, error: api.error, sessionId: api.hello?.sessionId };
      }
      await api.connectSubscriber(t);
      const subscriber = api.subscriber;
      return {
        state: subscriber.state,
        error: subscriber.error,
        sessionId: subscriber.hello?.sessionId,
      };
    },
    [side, token] as const,
  );
  if (state.state !== 'open' || !state.sessionId) {
    throw new Error(
      `the ${side} did not connect: ${state.state} ${state.error ?? ''}\n${output.slice(-30).join('\n')}`,
    );
  }
  return state.sessionId;
}

function demoPage(
  page: Page,
  pageErrors: string[],
  stack: Stack,
  output: string[],
  addBallast: () => Promise<void>,
): DemoPage {
  const connect = (side: Side) => connectSide(page, side, stack.token, output);
  const close = (side: Side) =>
    page.evaluate(
      (s) =>
        s === 'publisher'
          ? window.streamAnchorDemo.close()
          : window.streamAnchorDemo.closeSubscriber(),
      side,
    );
  return {
    page,
    pageErrors,
    publish: (n, topic, options) =>
      page.evaluate(([count, t, o]) => window.streamAnchorDemo.publish(count, t, o), [
        n,
        topic,
        options,
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
    connectOn: (side, relayId) =>
      placeOn(
        stack,
        relayId,
        () => connect(side),
        () => close(side),
        addBallast,
      ),
    subscribe: (topic, after) =>
      page.evaluate(([t, a]) => window.streamAnchorDemo.subscribe(t, a), [topic, after] as const),
    received: () => page.evaluate(() => window.streamAnchorDemo.received()),
    async waitForReceived(n, timeoutMs = 60_000) {
      try {
        await page.waitForFunction(
          (target) => window.streamAnchorDemo.subscriber.received >= target,
          n,
          { timeout: timeoutMs, polling: 100 },
        );
      } catch (error) {
        const subscriber = await page.evaluate(() => window.streamAnchorDemo.subscriber);
        throw new Error(
          `waiting for ${n} received records: ${(error as Error).message}\nsubscriber ${JSON.stringify(subscriber)}\n${output.slice(-40).join('\n')}`,
        );
      }
      return page.evaluate(() => window.streamAnchorDemo.received());
    },
    latencies: () => page.evaluate(() => window.streamAnchorDemo.latencies()),
  };
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
