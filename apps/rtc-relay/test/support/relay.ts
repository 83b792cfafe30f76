import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { type AddressInfo, createServer } from 'node:net';
import {
  type BusDeps,
  createKeys,
  createQueue,
  createQueueEvents,
  createRedisConnection,
  createWorker,
  jobIds,
  requestReply,
  type TypedQueue,
  type TypedWorker,
} from '@streamanchor/bus';
import type { CreateSessionRequest, HelloMessage, RecordBatchJob } from '@streamanchor/protocol';
import { createLogger } from '@streamanchor/service-kit';
import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import type { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import nodeDataChannel, { type LogLevel } from 'node-datachannel';
import { type App, createApp } from '../../src/app';
import { type Config, loadConfig } from '../../src/config';
import type { ClientProcess } from './client';

/** A UDP port that was free a moment ago on 127.0.0.1 (for ICE_UDP_PORT). */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for OPS_PORT). */
export async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

/** How tests open sessions on a relay, in this process or in its own. */
export interface SessionDoor {
  /**
   * Opens a session through the control queue: subject 'alice', may publish to ['demo'] and
   * subscribe to nothing, unless `request` says otherwise (e.g. `subscribeTopics: ['demo']`).
   */
  createSession(
    request: Partial<CreateSessionRequest> & { offerSdp: string },
    timeoutMs?: number,
  ): Promise<{ sessionId: string; answerSdp: string }>;
  /** Offer from the client → createSession through the control queue → answer → channel open → hello. */
  connect(
    client: ClientProcess,
    request?: Partial<CreateSessionRequest>,
    /** The data channel's protocol (default streamanchor.v1). */
    options?: { protocol?: string },
  ): Promise<{ sessionId: string; answerSdp: string; hello: HelloMessage }>;
}

/** The gateway's side of a relay's control queue, as a SessionDoor. */
export function sessionDoor(
  control: TypedQueue<'relayControl'>,
  controlEvents: QueueEvents,
): SessionDoor {
  const door: SessionDoor = {
    async createSession(request, timeoutMs = 10_000) {
      const sessionId = request.sessionId ?? newSessionId();
      const result = await requestReply(
        control,
        controlEvents,
        'createSession',
        {
          subject: 'alice',
          topics: ['demo'],
          // No subscription unless a test asks for one (`subscribeTopics: ['demo']`).
          subscribeTopics: [],
          tokenExpiresAt: Date.now() + 60_000,
          deadline: Date.now() + timeoutMs,
          ...request,
          sessionId,
        },
        { jobId: jobIds.createSession(sessionId), timeoutMs },
      );
      return { sessionId, answerSdp: result.answerSdp };
    },
    async connect(client, request = {}, options = {}) {
      const offerSdp = await client.offer(options);
      const { sessionId, answerSdp } = await door.createSession({ ...request, offerSdp });
      client.command({ cmd: 'answer', sdp: answerSdp });
      await client.waitFor((e) => e.event === 'open');
      const hello = (await client.message((m) => m.type === 'hello')) as HelloMessage;
      return { sessionId, answerSdp, hello };
    },
  };
  return door;
}

export interface TestRelay extends SessionDoor {
  app: App;
  config: Config;
  redis: Redis;
  bus: BusDeps;
  control: TypedQueue<'relayControl'>;
  controlEvents: QueueEvents;
  /** Jobs taken from the `records` queue by the stand-in writer (when started). */
  recordJobs: RecordBatchJob[];
  /** Starts a Worker on the real `records` queue standing in for chain-writer. */
  startWriter(): Promise<TypedWorker<'records'>>;
  close(): Promise<void>;
}

/** A relay app in this process on a fresh Redis prefix, with the gateway's side of the control queue. */
export async function startTestRelay(env: Record<string, string> = {}): Promise<TestRelay> {
  // Debugging aid: NDC_LOG=Debug prints libdatachannel's log (relay side) to stderr.
  if (process.env.NDC_LOG) {
    nodeDataChannel.initLogger(process.env.NDC_LOG as LogLevel, (level, message) =>
      process.stderr.write(`[relay ${level}] ${message}\n`),
    );
  }
  // Relays given one REDIS_PREFIX share their queues and topic streams (a deployment).
  const prefix = env.REDIS_PREFIX ?? testRedisPrefix('relay');
  const config = loadConfig({
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: prefix,
    LOG_LEVEL: 'silent',
    // No ops server unless a test asks for one (several relays run in one process).
    OPS_PORT: '0',
    ICE_BIND_ADDRESS: '127.0.0.1',
    ICE_UDP_PORT: String(await freeUdpPort()),
    MAX_MESSAGE_BYTES: '4096',
    MAX_PAYLOAD_BYTES: '1024',
    HEARTBEAT_MS: '500',
    CLOSE_GRACE_MS: '2000',
    ...env,
  });
  const redis = createRedisConnection(TEST_REDIS_URL);
  const keys = createKeys(prefix);
  const logger = createLogger({ service: 'rtc-relay', level: config.logLevel });
  const app = createApp({ config, logger, redis, keys });
  await app.start();
  const bus: BusDeps = { connection: redis, keys };
  const control = createQueue(bus, 'relayControl', app.relayId);
  const controlEvents = createQueueEvents(bus, 'relayControl', app.relayId);
  await controlEvents.waitUntilReady();
  const recordJobs: RecordBatchJob[] = [];
  const writers: TypedWorker<'records'>[] = [];

  const relay: TestRelay = {
    app,
    config,
    redis,
    bus,
    control,
    controlEvents,
    recordJobs,
    async startWriter() {
      const worker = createWorker(bus, 'records', undefined, async (job) => {
        recordJobs.push(job.data);
        return { stored: job.data.records.length };
      });
      writers.push(worker);
      await worker.waitUntilReady();
      return worker;
    },
    ...sessionDoor(control, controlEvents),
    async close() {
      await app.stop();
      for (const worker of writers) await worker.close();
      await controlEvents.close();
      await control.close();
      await deleteRedisPrefix(prefix);
      redis.disconnect();
    },
  };
  return relay;
}
