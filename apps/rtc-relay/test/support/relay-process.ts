import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type BusDeps,
  createKeys,
  createQueue,
  createQueueEvents,
  createRedisConnection,
  createRelayRegistry,
  createWorker,
  type RelayInfo,
  type TypedWorker,
} from '@streamanchor/bus';
import type { RecordBatchJob } from '@streamanchor/protocol';
import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import { freeUdpPort, type SessionDoor, sessionDoor } from './relay';

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = join(here, '..', '..');

/**
 * The relay as it runs in production: src/main.ts in a child process (signals, exit code,
 * drain), with the gateway's side of its control queue and a stand-in writer in this one.
 */
export interface RelayProcess extends SessionDoor {
  relayId: string;
  udpPort: number;
  bus: BusDeps;
  /** Jobs the stand-in writer took from the `records` queue. */
  recordJobs: RecordBatchJob[];
  /** The process's exit, once it happened. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its stdout and stderr so far (JSON log lines). */
  output(): string;
  kill(signal: NodeJS.Signals): void;
  /** This relay's registry entry, or undefined when it is not live. */
  registryEntry(): Promise<RelayInfo | undefined>;
  /** Kills the process if it still runs, and cleans its Redis keys up. */
  close(): Promise<void>;
}

export async function startRelayProcess(env: Record<string, string> = {}): Promise<RelayProcess> {
  const prefix = testRedisPrefix('relay-process');
  const relayId = `relay-proc-${randomBytes(3).toString('hex')}`;
  const udpPort = env.ICE_UDP_PORT ? Number(env.ICE_UDP_PORT) : await freeUdpPort();
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(packageDir, 'src', 'main.ts')],
    {
      cwd: packageDir,
      env: {
        ...process.env,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: prefix,
        RELAY_ID: relayId,
        LOG_LEVEL: 'info',
        ICE_BIND_ADDRESS: '127.0.0.1',
        ICE_UDP_PORT: String(udpPort),
        HEARTBEAT_MS: '500',
        CLOSE_GRACE_MS: '1000',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const redis = createRedisConnection(TEST_REDIS_URL);
  const keys = createKeys(prefix);
  const bus: BusDeps = { connection: redis, keys };
  const registry = createRelayRegistry({ redis, keys });
  const control = createQueue(bus, 'relayControl', relayId);
  const controlEvents = createQueueEvents(bus, 'relayControl', relayId);
  const recordJobs: RecordBatchJob[] = [];
  const writer: TypedWorker<'records'> = createWorker(bus, 'records', undefined, async (job) => {
    recordJobs.push(job.data);
    return { stored: job.data.records.length };
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });

  const registryEntry = async () =>
    (await registry.live(5_000)).find((relay) => relay.relayId === relayId);

  const relay: RelayProcess = {
    relayId,
    udpPort,
    bus,
    recordJobs,
    exited,
    output: () => output,
    kill: (signal) => child.kill(signal),
    registryEntry,
    ...sessionDoor(control, controlEvents),
    async close() {
      if (!gone) {
        child.kill('SIGKILL');
        await exited;
      }
      await writer.close();
      await controlEvents.close();
      await control.close();
      await deleteRedisPrefix(prefix);
      redis.disconnect();
    },
  };

  try {
    await Promise.all([controlEvents.waitUntilReady(), writer.waitUntilReady()]);
    const deadline = Date.now() + 20_000;
    while (!(await registryEntry())) {
      if (gone) throw new Error(`the relay exited while starting:\n${output}`);
      if (Date.now() > deadline) throw new Error(`the relay did not register in 20 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await relay.close();
    throw error;
  }
  return relay;
}
