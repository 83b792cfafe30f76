import {
  createKeys,
  createRelayRegistry,
  createWorker,
  type Keys,
  type TypedJob,
} from '@streamanchor/bus';
import {
  contentHashOf,
  type LookupReceiptResult,
  leafHash,
  PROBLEM_TYPE_PREFIX,
  PROBLEMS,
  type ProblemCode,
  type Receipt,
} from '@streamanchor/protocol';
import { createLogger } from '@streamanchor/service-kit';
import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { type App, createApp } from '../src/app';
import { mintToken } from '../src/auth';
import { type Config, loadConfig } from '../src/config';

export const TEST_SECRET = 'test-secret-for-the-gateway-0123456789';
export const TEST_CONTRACT = '0x5FbDB2315678afecb367f032d93F642f64180aa3';

/** The env a test gateway starts from; tests override single variables. */
export function testEnv(
  overrides: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return {
    JWT_SECRET: TEST_SECRET,
    HOST: '127.0.0.1',
    PORT: '0',
    CHAIN_ID: '31337',
    CONTRACT_ADDRESS: TEST_CONTRACT,
    DEPLOYMENT_BLOCK: '7',
    PUBLIC_RPC_URL: 'http://127.0.0.1:8545',
    LOG_LEVEL: 'silent',
    // No ops server unless a test asks for one (many gateways run in one process).
    OPS_PORT: '0',
    REDIS_URL: TEST_REDIS_URL,
    // Generous limits, so tests that open many sessions are not refused; the limit tests
    // (src/sessions/limits.test.ts) set their own.
    SESSION_RATE_PER_IP: '100000',
    SESSION_RATE_PER_SUBJECT: '100000',
    MAX_SESSIONS_PER_SUBJECT: '100000',
    ...overrides,
  };
}

export interface TestGateway {
  app: App;
  config: Config;
  redis: Redis;
  keys: Keys;
  prefix: string;
  token(options?: {
    subject?: string;
    topics?: string[];
    subscribe?: string[];
    ttlSeconds?: number;
  }): Promise<string>;
  close(): Promise<void>;
}

/** A gateway on real Redis under a fresh key prefix (not listening until app.start()). */
export async function startGateway(
  overrides: Record<string, string | undefined> = {},
  { redis: givenRedis }: { redis?: Redis } = {},
): Promise<TestGateway> {
  const prefix = testRedisPrefix('gw');
  const config = loadConfig(testEnv({ REDIS_PREFIX: prefix, ...overrides }));
  const redis = givenRedis ?? new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2 });
  const keys = createKeys(prefix);
  const logger = createLogger({ service: 'signaling-gateway-test', level: config.LOG_LEVEL });
  const app = createApp({ config, logger, redis, keys });
  await app.fastify.ready();
  return {
    app,
    config,
    redis,
    keys,
    prefix,
    token: ({
      subject = 'alice',
      topics = ['demo', 'telemetry'],
      subscribe,
      ttlSeconds = 600,
    } = {}) => mintToken({ secret: TEST_SECRET, subject, topics, subscribe, ttlSeconds }),
    async close() {
      await app.stop();
      if (!givenRedis) redis.disconnect();
      await deleteRedisPrefix(prefix);
    },
  };
}

type ControlJob = TypedJob<'relayControl'>;

export interface FakeRelay {
  relayId: string;
  /** Every job this relay received, in order. */
  jobs: ControlJob[];
  close(): Promise<void>;
}

/**
 * STANDS IN FOR rtc-relay, which is another service with its own tests (and the e2e
 * suite drives the real pair). It is a real BullMQ Worker on the relay's real control
 * queue, on real Redis, plus the relay's registry heartbeat; only the processor is
 * scripted: by default it answers createSession with ANSWER_SDP and deleteSession with
 * { deleted: true }.
 */
export async function startFakeRelay(
  gateway: Pick<TestGateway, 'redis' | 'keys'>,
  {
    relayId = `relay-${Math.random().toString(36).slice(2, 10)}`,
    sessions = 0,
    process,
  }: {
    relayId?: string;
    sessions?: number;
    process?: (job: ControlJob) => Promise<unknown>;
  } = {},
): Promise<FakeRelay> {
  const registry = createRelayRegistry({ redis: gateway.redis, keys: gateway.keys });
  const jobs: ControlJob[] = [];
  const worker = createWorker(
    { connection: gateway.redis, keys: gateway.keys },
    'relayControl',
    relayId,
    async (job) => {
      jobs.push(job);
      if (process) return (await process(job)) as never;
      if (job.name === 'createSession') return { answerSdp: ANSWER_SDP } as never;
      return { deleted: true } as never;
    },
  );
  await worker.waitUntilReady();
  const beat = () => registry.heartbeat({ relayId, sessions, startedAt: Date.now() }, 60_000);
  await beat();
  const timer = setInterval(() => void beat().catch(() => {}), 1000);
  return {
    relayId,
    jobs,
    async close() {
      clearInterval(timer);
      await worker.close(true);
      await registry.remove(relayId);
    },
  };
}

type LookupJob = TypedJob<'indexerLookup'>;

export interface FakeIndexer {
  /** What the indexer answers per record id (absent: `unknown`). */
  records: Map<string, LookupReceiptResult>;
  /** Every lookup job it received, in order. */
  jobs: LookupJob[];
  close(): Promise<void>;
}

/**
 * STANDS IN FOR chain-indexer, which is another service (no app imports another): its
 * lookup worker and the batch ledger behind it have their own tests over a real database
 * (apps/chain-indexer/src/lookup). This is a real BullMQ Worker on the real `indexerLookup`
 * queue, on real Redis; only the ledger is replaced by `records`, or by `process`.
 */
export async function startFakeIndexer(
  gateway: Pick<TestGateway, 'redis' | 'keys'>,
  { process }: { process?: (job: LookupJob) => Promise<unknown> } = {},
): Promise<FakeIndexer> {
  const records = new Map<string, LookupReceiptResult>();
  const jobs: LookupJob[] = [];
  const worker = createWorker(
    { connection: gateway.redis, keys: gateway.keys },
    'indexerLookup',
    undefined,
    async (job): Promise<LookupReceiptResult> => {
      jobs.push(job);
      if (process) return (await process(job)) as never;
      const { recordId } = job.data as { recordId: string };
      return records.get(recordId) ?? { state: 'unknown' };
    },
  );
  await worker.waitUntilReady();
  return {
    records,
    jobs,
    async close() {
      await worker.close(true);
    },
  };
}

/**
 * A well-formed receipt of a one-record batch (the root is the leaf; the proof is empty),
 * so that verifyReceiptProof holds for it.
 */
export function testReceipt(overrides: Partial<Receipt> = {}): Receipt {
  const hex32 = (byte: string) => `0x${byte.repeat(32)}` as `0x${string}`;
  const leaf = {
    recordId: overrides.recordId ?? hex32('a1'),
    topic: overrides.topic ?? 'demo',
    subject: overrides.subject ?? 'alice',
    contentHash: contentHashOf('{"n":1}'),
    acceptedAt: 1_764_000_000_000,
  };
  const hash = leafHash(leaf);
  return {
    status: 'included',
    confirmations: 2,
    revision: 1,
    ...leaf,
    leafHash: hash,
    leafIndex: 0,
    proof: [],
    batchId: hex32('b2'),
    merkleRoot: hash,
    recordCount: 1,
    chainId: 31337,
    contract: TEST_CONTRACT.toLowerCase() as `0x${string}`,
    txHash: hex32('c3'),
    blockNumber: 12,
    blockHash: hex32('d4'),
    logIndex: 0,
    ...overrides,
  };
}

/** An SDP offer as Chromium sends it for one data channel (no trickle, host candidate). */
export const OFFER_SDP = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  'a=candidate:1467250027 1 udp 2122260223 192.168.1.10 46243 typ host generation 0 network-id 1',
  'a=ice-ufrag:Kd8s',
  'a=ice-pwd:9cBnR4vBF4mSgHkYQ0mU7f5q',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 5B:6C:81:2E:36:46:44:A3:0C:1B:D5:76:0A:F8:3F:10:99:8A:19:71:96:2F:8C:37:21:5D:1A:0B:2E:49:55:D1',
  'a=setup:actpass',
  'a=mid:0',
  'a=sctp-port:5000',
  'a=max-message-size:262144',
  '',
].join('\r\n');

export const ANSWER_UFRAG = 'Zq7P';

/** What a relay (libdatachannel) answers. */
export const ANSWER_SDP = [
  'v=0',
  'o=rtc 1811652395 0 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'a=msid-semantic:WMS *',
  'a=setup:active',
  `a=ice-ufrag:${ANSWER_UFRAG}`,
  'a=ice-pwd:Pw0rdPw0rdPw0rdPw0rdPw',
  'a=ice-options:ice2',
  'a=fingerprint:sha-256 0F:17:B2:5A:4E:1D:8C:90:3B:44:A6:7E:21:C9:D0:55:6A:8F:13:2B:E4:70:99:BC:05:DE:31:A8:7C:44:12:F0',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=sendrecv',
  'a=sctp-port:5000',
  'a=max-message-size:262144',
  'a=candidate:1 1 UDP 2122317823 127.0.0.1 50000 typ host',
  'a=end-of-candidates',
  '',
].join('\r\n');

/** Minimal shape of a response (fastify.inject's or fetch's, normalized). */
export interface ResponseLike {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

/** Asserts an RFC 9457 problem with our code, and returns its parsed body. */
export function expectProblem(response: ResponseLike, code: ProblemCode): Record<string, unknown> {
  const { status, title } = PROBLEMS[code];
  expect(response.statusCode, response.body).toBe(status);
  expect(String(response.headers['content-type'])).toMatch(/^application\/problem\+json(;|$)/);
  const body = JSON.parse(response.body) as Record<string, unknown>;
  expect(body).toMatchObject({ type: `${PROBLEM_TYPE_PREFIX}${code}`, title, status, code });
  expect(response.body).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
  expect(
    Object.keys(body).every((key) =>
      ['type', 'title', 'status', 'code', 'detail', 'instance'].includes(key),
    ),
  ).toBe(true);
  return body;
}
