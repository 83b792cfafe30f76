import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  createKeys,
  createRedisConnection,
  createRelayRegistry,
  redactUrl,
} from '@streamanchor/bus';
import { deployStreamAnchor } from '@streamanchor/contracts';
import { type DatabaseHandle, openDatabase } from '@streamanchor/db';
import { mintToken } from '@streamanchor/signaling-gateway';
import {
  ANVIL_CHAIN_ID,
  ANVIL_TEST_PRIVATE_KEY,
  type Anvil,
  getFreePort,
  startAnvil,
} from '@streamanchor/testing';
import { type Address, createPublicClient, createWalletClient, getAddress, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';
import { ensureContractsBuilt, ensureWebBuilt } from './build';
import { loadStackConfig, type StackConfig } from './config';
import { StackError } from './errors';
import { paths } from './paths';
import { type OutputSink, type ServiceProcess, startServiceProcess } from './processes';
import { clearRedisPrefix, ensureRedis, type RedisHandle } from './redis';

export { BuildError, ensureContractsBuilt, ensureWebBuilt } from './build';
export { loadStackConfig, type StackConfig, StackConfigSchema } from './config';
export { StackError } from './errors';
export { paths, REPO_ROOT, SERVICES, type ServiceName } from './paths';
export { formatLogLine, type OutputSink } from './processes';
export { REDIS_MISSING_MESSAGE } from './redis';

type Env = Record<string, string | undefined>;

export interface StartStackOptions {
  /** The environment to read (and to pass on to the services). Default: process.env. */
  env?: Env;
  /** Where progress and service log lines go. Default: stdout. */
  output?: OutputSink;
  /** Build the contracts ABI and the demo page when missing or stale (default true). */
  build?: boolean;
  /** Delete every Redis key under `${REDIS_PREFIX}:` when the stack stops (tests; default false). */
  clearRedisOnStop?: boolean;
  /** Aborting it during start-up stops what was started and rejects (Ctrl-C in `pnpm dev`). */
  signal?: AbortSignal;
  /**
   * How many rtc-relay processes to run (default 1), sharing Redis as a deployment's relays
   * do: services `rtc-relay`, `rtc-relay-2`, …, ids in `relayIds`. The gateway gives each new
   * session to the least loaded live relay; `relayOf` says which one holds a session. With
   * ICE_UDP_PORT set, relay i (from 0) muxes its sessions on port ICE_UDP_PORT + i.
   */
  relays?: number;
  /**
   * The address anvil listens on (default 127.0.0.1); the gateway's PUBLIC_RPC_URL, which
   * browsers verify receipts against, points there. The netns end-to-end test gives the
   * address its browser's network namespace reaches.
   */
  anvilHost?: string;
  /**
   * The RPC_URL each chain service gets (fault tests: a JSON-RPC proxy in front of anvil, one
   * URL per service). Called once per service start, after anvil is up and the contract is
   * deployed. Default: anvil's own URL. The gateway's PUBLIC_RPC_URL stays anvil's.
   */
  rpcUrlFor?: (
    service: ChainServiceName,
    chain: { rpcUrl: string; deploymentBlock: bigint },
  ) => string | Promise<string>;
}

/** The services that read the chain over RPC_URL (chain-services: both, in one process on PGlite). */
export type ChainServiceName = 'chain-writer' | 'chain-indexer' | 'chain-services';

export interface Stack {
  urls: {
    /** Base URL of the signaling API (also serves the demo page at /). */
    api: string;
    /** JSON-RPC URL of the local anvil chain. */
    rpc: string;
  };
  /** The demo page with a token in its fragment. */
  demoUrl: string;
  /** A bearer token for subject 'demo' that may publish and subscribe to 'demo', valid 24 h. */
  token: string;
  jwtSecret: string;
  chainId: number;
  contractAddress: Address;
  deploymentBlock: number;
  /** The first relay's id (service `rtc-relay`). */
  relayId: string;
  /** Every relay's id, in service order (`rtc-relay`, `rtc-relay-2`, …). */
  relayIds: readonly string[];
  /**
   * The relay holding a session (its route in Redis, written when the session opened), or
   * undefined once the session is gone. The session id is the hello's `sessionId`.
   */
  relayOf(sessionId: string): Promise<string | undefined>;
  redis: { url: string; prefix: string; origin: RedisHandle['origin'] };
  database: { kind: 'postgres'; url: string } | { kind: 'pglite'; dir: string };
  /** The running service processes (restart() replaces an entry in place). */
  services: readonly ServiceProcess[];
  /**
   * Fault tests: SIGKILL a service's process (no shutdown, no flush) and wait until it is
   * gone. An exit caused this way does not count as a failure (`failed` ignores it).
   */
  kill9(service: string): Promise<void>;
  /**
   * Starts a service again with the environment it first got (after kill9, or stops it
   * first when still running). Resolves once the process is spawned; the relay re-registers
   * and the chain services resume on their own.
   */
  restart(service: string): Promise<ServiceProcess>;
  /**
   * A new connection to the services' database; the caller closes it. PGlite belongs to the
   * chain-services process, so on PGlite this works only once the stack has stopped.
   */
  openDatabase(): Promise<DatabaseHandle>;
  /**
   * Settles when a service exits without being asked to; by then the stack has stopped
   * everything else. Never settles after stop().
   */
  failed: Promise<{ service: string; code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops the services (SIGTERM, in order), then anvil and any Redis the stack started. */
  stop(): Promise<void>;
}

const defaultOutput: OutputSink = (line) => {
  process.stdout.write(`${line}\n`);
};

/** Anvil's `foundry` chain (id 31337) pointed at our anvil. */
const chainFor = (rpcUrl: string) => ({
  ...foundry,
  rpcUrls: { default: { http: [rpcUrl] } },
});

/** Throws StackError naming `variable` when `port` is taken on `host`; 0 picks a free port. */
async function claimPort(variable: string, host: string, port: number): Promise<number> {
  if (port === 0) return getFreePort();
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new StackError(
          `${variable}: port ${port} on ${host} is not available (${error.code ?? error.message})`,
          `Stop whatever uses it, or set ${variable} to another port (0 picks a free one).`,
        ),
      ),
    );
    server.listen(port, host, () => server.close(() => resolve()));
  });
  return port;
}

/** The orphan reaper (reaper.ts), connected by IPC; it never keeps this process alive. */
function startReaper(): ChildProcess {
  const reaper = spawn(process.execPath, ['--import', 'tsx', paths.reaper], {
    cwd: paths.root,
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    detached: true,
  });
  reaper.unref();
  reaper.channel?.unref();
  reaper.on('error', () => {});
  return reaper;
}

/** JWT_SECRET, else the secret kept in DATA_DIR/jwt-secret (created once, mode 600). */
export function resolveJwtSecret(config: StackConfig): { secret: string; origin: string } {
  if (config.JWT_SECRET) return { secret: config.JWT_SECRET, origin: 'JWT_SECRET' };
  const file = join(config.DATA_DIR, 'jwt-secret');
  if (existsSync(file)) {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret.length < 32) {
      throw new StackError(
        `JWT_SECRET: ${file} holds fewer than 32 characters`,
        'Delete the file to generate a new secret, or set JWT_SECRET.',
      );
    }
    return { secret, origin: file };
  }
  mkdirSync(config.DATA_DIR, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return { secret, origin: `${file} (new)` };
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  watch: readonly ServiceProcess[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    throwIfAborted(signal);
    const dead = watch.find(
      (service) => service.child.exitCode !== null || service.child.signalCode !== null,
    );
    if (dead) {
      throw new StackError(
        `${dead.name} exited during start-up (${dead.child.signalCode ?? `exit ${dead.child.exitCode}`})`,
        dead.tail(),
      );
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new StackError(`${what} not ready within ${timeoutMs / 1000} s`, '');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StackError('start-up interrupted', '');
}

/**
 * Starts the whole local stack: Redis (found or started), a fresh anvil chain with
 * StreamAnchor deployed, and every service as a child process. Used by `pnpm dev`
 * and by the end-to-end tests.
 */
export async function startStack(options: StartStackOptions = {}): Promise<Stack> {
  const env = options.env ?? process.env;
  const output = options.output ?? defaultOutput;
  const log = (line: string) => output(`[stack] ${line}`);
  const config = loadStackConfig(env);

  // Everything started so far, stopped in reverse on failure.
  const cleanups: (() => Promise<void>)[] = [];
  const services: ServiceProcess[] = [];
  let stopping = false;
  let stopped: Promise<void> | undefined;
  // Last resort when this process exits without stop() (an uncaught error): no orphans.
  const orphans: ChildProcess[] = [];
  const killAll = () => {
    for (const child of [...services.map((s) => s.child), ...orphans]) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  };
  process.on('exit', killAll);
  // And when this process dies without even running exit handlers (SIGKILL): see reaper.ts.
  const reaper = startReaper();
  const watch = (child: ChildProcess, tier: 'service' | 'infra') => {
    if (child.pid !== undefined && reaper.connected)
      reaper.send({ type: 'watch', pid: child.pid, tier });
  };

  const stop = () => {
    if (stopped) return stopped;
    stopping = true;
    stopped = (async () => {
      // Front to back: no new sessions, then the relays flush what they accepted, then the
      // chain services finish their batches.
      const order: string[] = [
        'signaling-gateway',
        'rtc-relay',
        'chain-writer',
        'chain-indexer',
        'chain-services',
      ];
      for (const name of order) {
        // `rtc-relay` stands for every relay (`rtc-relay-2`, …): they stop together.
        const tier = services.filter((s) => s.name.replace(/-\d+$/, '') === name);
        await Promise.all(tier.map((service) => service.stop(15_000)));
      }
      await Promise.all(services.map((service) => service.stop(5_000)));
      for (const cleanup of cleanups.reverse()) {
        await cleanup().catch((error: Error) => log(`cleanup failed: ${error.message}`));
      }
      process.off('exit', killAll);
      if (reaper.connected) {
        reaper.send({ type: 'done' });
        reaper.disconnect();
      }
    })();
    return stopped;
  };

  try {
    mkdirSync(config.DATA_DIR, { recursive: true });
    const jwt = resolveJwtSecret(config);

    if (options.build ?? true) {
      if (await ensureContractsBuilt()) log('built the contracts ABI (contracts/src/generated)');
      if (await ensureWebBuilt()) log('built the demo page (apps/web/dist)');
    }

    throwIfAborted(options.signal);
    const redis = await ensureRedis(config.REDIS_URL);
    cleanups.push(() => redis.stop());
    if (redis.process) {
      orphans.push(redis.process);
      watch(redis.process, 'infra');
    }
    if (redis.origin === 'started')
      log(`started redis-server at ${redis.url} (nothing kept on disk)`);
    // The chain is new on every run, so work queued by an earlier run refers to a chain that
    // no longer exists: discard it.
    const discarded = await clearRedisPrefix(redis.url, config.REDIS_PREFIX);
    if (discarded > 0)
      log(
        `discarded ${discarded} Redis keys under "${config.REDIS_PREFIX}:" left by an earlier run`,
      );
    if (options.clearRedisOnStop)
      cleanups.push(async () => void (await clearRedisPrefix(redis.url, config.REDIS_PREFIX)));

    const host = config.HOST;
    const anvilHost = options.anvilHost ?? '127.0.0.1';
    const anvilPort = await claimPort('ANVIL_PORT', anvilHost, config.ANVIL_PORT);
    const gatewayPort = await claimPort('PORT', host, config.PORT);
    throwIfAborted(options.signal);
    const anvil: Anvil = await startAnvil({
      host: anvilHost,
      port: anvilPort,
      blockTime: config.ANVIL_BLOCK_TIME > 0 ? config.ANVIL_BLOCK_TIME : undefined,
      detached: true,
    });
    cleanups.push(() => anvil.stop());
    orphans.push(anvil.process);
    watch(anvil.process, 'infra');
    log(
      `anvil at ${anvil.rpcUrl} (fresh chain ${ANVIL_CHAIN_ID}, block time ${config.ANVIL_BLOCK_TIME || 'automine'})`,
    );

    // ANVIL_TEST_PRIVATE_KEY is anvil's well-known PUBLIC dev key (account 0); it deploys the
    // contract (admin + writer) and signs the writer's anchor transactions on this local chain only.
    const account = privateKeyToAccount(ANVIL_TEST_PRIVATE_KEY);
    const chain = chainFor(anvil.rpcUrl);
    const publicClient = createPublicClient({ chain, transport: http(anvil.rpcUrl) });
    const walletClient = createWalletClient({ account, chain, transport: http(anvil.rpcUrl) });
    throwIfAborted(options.signal);
    const deployment = await deployStreamAnchor({ walletClient, publicClient });
    const contractAddress = getAddress(deployment.address);
    log(
      `StreamAnchor deployed at ${contractAddress} in block ${deployment.blockNumber} by ${account.address}`,
    );

    const database: Stack['database'] = config.DATABASE_URL
      ? { kind: 'postgres', url: config.DATABASE_URL }
      : { kind: 'pglite', dir: join(config.DATA_DIR, 'pglite') };
    if (database.kind === 'pglite') {
      // The chain is fresh on every run, so yesterday's batches and cursors would point at a
      // contract that no longer exists: start the embedded database empty too.
      rmSync(database.dir, { recursive: true, force: true });
      log(`PGlite in ${database.dir} (reset: the chain is new on every run)`);
    } else {
      log(
        `Postgres at ${redactUrl(database.url)} (kept across runs; rows of earlier runs refer to earlier chains)`,
      );
    }

    throwIfAborted(options.signal);
    const relayCount = options.relays ?? 1;
    if (!Number.isInteger(relayCount) || relayCount < 1) {
      throw new StackError(`relays: ${relayCount} is not a whole number ≥ 1`, '');
    }
    const relayId = `relay-stack-${randomBytes(3).toString('hex')}`;
    const relayIds = Array.from({ length: relayCount }, (_, i) =>
      i === 0 ? relayId : `${relayId}-${i + 1}`,
    );
    const chainEnv = {
      RPC_URL: anvil.rpcUrl,
      CHAIN_ID: String(ANVIL_CHAIN_ID),
      CONTRACT_ADDRESS: contractAddress,
      DEPLOYMENT_BLOCK: String(deployment.blockNumber),
    };
    const common = {
      LOG_LEVEL: config.LOG_LEVEL,
      REDIS_URL: redis.url,
      REDIS_PREFIX: config.REDIS_PREFIX,
      DATA_DIR: config.DATA_DIR,
      DATABASE_URL: config.DATABASE_URL,
    };
    const specs: { name: string; script: string; env: Env }[] = [
      ...relayIds.map((id, i) => ({
        name: i === 0 ? 'rtc-relay' : `rtc-relay-${i + 1}`,
        script: paths.mainOf('rtc-relay'),
        env: {
          ...common,
          RELAY_ID: id,
          ICE_BIND_ADDRESS: host === '0.0.0.0' ? '0.0.0.0' : host,
          // 0 or unset: an ephemeral port per session, never the relay's own default (one
          // fixed port), so that several relays, stacks and tests run side by side.
          ICE_UDP_PORT: String(config.ICE_UDP_PORT ? config.ICE_UDP_PORT + i : 0),
        },
      })),
      {
        name: 'signaling-gateway',
        script: paths.mainOf('signaling-gateway'),
        env: {
          ...common,
          ...chainEnv,
          HOST: host,
          PORT: String(gatewayPort),
          JWT_SECRET: jwt.secret,
          PUBLIC_RPC_URL: anvil.rpcUrl,
          WEB_DIST_DIR: paths.webDist,
        },
      },
    ];
    const writerEnv = { WRITER_PRIVATE_KEY: ANVIL_TEST_PRIVATE_KEY };
    if (database.kind === 'postgres') {
      specs.push(
        {
          name: 'chain-writer',
          script: paths.mainOf('chain-writer'),
          env: { ...common, ...chainEnv, ...writerEnv },
        },
        {
          name: 'chain-indexer',
          script: paths.mainOf('chain-indexer'),
          env: { ...common, ...chainEnv },
        },
      );
    } else {
      // PGlite is an embedded, single-process database: two processes must not open the same
      // folder. So without DATABASE_URL the writer and the indexer run in ONE child that opens
      // the database once and hands it to both apps (see chain-services.ts).
      specs.push({
        name: 'chain-services',
        script: paths.chainServices,
        env: { ...common, ...chainEnv, ...writerEnv },
      });
    }

    // Ops servers (GET /metrics, /readyz, /healthz) only when OPS_PORT asks for them: one port
    // each from OPS_PORT on, in spec order; otherwise none (0), never the services' default
    // 9464, so that stacks and tests run side by side.
    specs.forEach((spec, i) => {
      spec.env.OPS_PORT = String(config.OPS_PORT ? config.OPS_PORT + i : 0);
    });
    const baseEnv: Env = { ...env };
    // Stack-only settings never reach the services under a name they might misread.
    for (const key of ['ANVIL_PORT', 'ANVIL_BLOCK_TIME']) delete baseEnv[key];
    for (const spec of specs) {
      const chainService = ['chain-writer', 'chain-indexer', 'chain-services'].includes(spec.name);
      if (options.rpcUrlFor && chainService) {
        spec.env.RPC_URL = await options.rpcUrlFor(spec.name as ChainServiceName, {
          rpcUrl: anvil.rpcUrl,
          deploymentBlock: deployment.blockNumber,
        });
      }
    }
    // --cpu-prof writes the profile when the process exits (stop() ends services gracefully).
    const profileArgs = config.CPU_PROFILE_DIR
      ? ['--cpu-prof', `--cpu-prof-dir=${config.CPU_PROFILE_DIR}`]
      : [];
    const spawnService = (spec: (typeof specs)[number]) => {
      const service = startServiceProcess({
        name: spec.name,
        // Services run from their TypeScript sources through tsx's loader (resolved from the
        // repository root's node_modules), exactly like `node --import tsx apps/<svc>/src/main.ts`.
        command: process.execPath,
        args: [...profileArgs, '--import', 'tsx', spec.script],
        cwd: paths.root,
        env: { ...baseEnv, ...spec.env },
        output,
      });
      watch(service.child, 'service');
      return service;
    };
    for (const spec of specs) services.push(spawnService(spec));

    const apiHost = host === '0.0.0.0' ? '127.0.0.1' : host;
    const api = `http://${apiHost}:${gatewayPort}`;
    const registryRedis = createRedisConnection(redis.url, 'stack-readiness');
    registryRedis.on('error', () => {});
    try {
      const registry = createRelayRegistry({
        redis: registryRedis,
        keys: createKeys(config.REDIS_PREFIX),
      });
      await waitFor(
        relayCount === 1 ? 'rtc-relay (registered in Redis)' : 'rtc-relays (registered in Redis)',
        async () => {
          const live = new Set((await registry.live(10_000)).map((relay) => relay.relayId));
          return relayIds.every((id) => live.has(id));
        },
        services,
        90_000,
        options.signal,
      );
      await waitFor(
        `signaling-gateway (${api}/healthz)`,
        async () => (await fetch(`${api}/healthz`, { signal: AbortSignal.timeout(2000) })).ok,
        services,
        90_000,
        options.signal,
      );
    } finally {
      registryRedis.disconnect();
    }
    // The chain services have no HTTP port: they count as up while they keep running.
    await waitFor('services', async () => true, services, 1000);

    let reportFailure: (failure: Awaited<Stack['failed']>) => void = () => {};
    const failed = new Promise<Awaited<Stack['failed']>>((resolve) => {
      reportFailure = resolve;
    });
    // Processes killed on purpose (kill9, or stopped by restart): their exit is no failure.
    const intended = new WeakSet<ServiceProcess>();
    const watchExit = (service: ServiceProcess) => {
      void service.exited.then(async ({ code, signal }) => {
        if (stopping || intended.has(service)) return;
        output(
          `[stack] ${service.name} exited unexpectedly (${signal ?? `exit ${code}`}); stopping the stack`,
        );
        await stop();
        reportFailure({ service: service.name, code, signal });
      });
    };
    for (const service of services) watchExit(service);
    const find = (name: string) => {
      const index = services.findIndex((s) => s.name === name);
      if (index < 0) {
        throw new StackError(
          `no service named ${name}`,
          `running: ${services.map((s) => s.name).join(', ')}`,
        );
      }
      return index;
    };
    const kill9 = async (name: string) => {
      const service = services[find(name)]!;
      intended.add(service);
      if (service.child.exitCode === null && service.child.signalCode === null) {
        output(`[stack] ${name}: kill -9 (on purpose)`);
        service.child.kill('SIGKILL');
      }
      await service.exited;
    };
    const restart = async (name: string) => {
      const index = find(name);
      if (stopping) throw new StackError(`cannot restart ${name}: the stack is stopping`, '');
      const old = services[index]!;
      intended.add(old);
      await old.stop(15_000);
      const spec = specs.find((s) => s.name === name)!;
      const service = spawnService(spec);
      services[index] = service;
      output(`[stack] ${name}: restarted (pid ${service.child.pid})`);
      watchExit(service);
      return service;
    };

    const token = await mintToken({
      secret: jwt.secret,
      subject: 'demo',
      topics: ['demo'],
      subscribe: ['demo'],
      ttlSeconds: 24 * 3600,
    });
    return {
      urls: { api, rpc: anvil.rpcUrl },
      demoUrl: `${api}/#token=${token}`,
      token,
      jwtSecret: jwt.secret,
      chainId: ANVIL_CHAIN_ID,
      contractAddress,
      deploymentBlock: Number(deployment.blockNumber),
      relayId,
      relayIds,
      async relayOf(sessionId) {
        const connection = createRedisConnection(redis.url, 'stack-route');
        connection.on('error', () => {});
        try {
          const registry = createRelayRegistry({
            redis: connection,
            keys: createKeys(config.REDIS_PREFIX),
          });
          return (await registry.getSession(sessionId))?.relayId;
        } finally {
          connection.disconnect();
        }
      },
      redis: { url: redis.url, prefix: config.REDIS_PREFIX, origin: redis.origin },
      database,
      services,
      kill9,
      restart,
      failed,
      stop,
      async openDatabase() {
        if (database.kind === 'postgres') {
          return openDatabase({ databaseUrl: database.url, pgliteDir: 'unused', poolSize: 2 });
        }
        if (!stopping) {
          throw new StackError(
            'The stack runs on PGlite, which only the chain-services process may open while it runs',
            'Open it after stop(), or start the stack with DATABASE_URL to query it while it runs.',
          );
        }
        await stop();
        return openDatabase({ pgliteDir: database.dir });
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
