/**
 * Static checks of docker-compose.yml, infra/docker/*.Dockerfile, .dockerignore and the
 * public edge's files (infra/cloudflared/config.yml, infra/coturn/turnserver.conf).
 * Docker cannot run on this project's machines, so these files are kept correct by
 * construction and by this test: it parses them and holds them against the services'
 * own config schemas, the workspace layout and each other.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema as RelayConfigSchema } from '@streamanchor/rtc-relay';
import { ConfigError } from '@streamanchor/service-kit';
import { ANVIL_TEST_PRIVATE_KEY } from '@streamanchor/testing';
import { getContractAddress } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT, SERVICES } from '../src/paths';

type Env = Record<string, string | undefined>;

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (
    | string
    | { target: number; published?: string | number; protocol?: string; host_ip?: string }
  )[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  command?: string[] | string;
  healthcheck?: { test: string[] | string };
  profiles?: string[];
  network_mode?: string;
  networks?: string[] | Record<string, { ipv4_address?: string } | null>;
  entrypoint?: string[] | string;
  volumes?: string[];
  stop_grace_period?: string;
}

const composeText = readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as {
  services: Record<string, ComposeService>;
  networks?: Record<string, { ipam?: { config?: { subnet?: string }[] } }>;
};
const services = compose.services;

/** The ops server's port in every container (service-kit's DEFAULT_OPS_PORT; not published). */
const OPS_PORT = 9464;
/** The profile of the internet-facing edge (docs/deploy.md). */
const PUBLIC_PROFILE = 'public';
/** Its services: not started by a plain `docker compose up`. */
const EDGE = ['coturn', 'cloudflared'];

/** Values for `${VAR:?…}` (required) variables: what an operator must supply. */
const PLACEHOLDERS: Env = {
  JWT_SECRET: 'placeholder-secret-placeholder-secret-0123',
  REDIS_PASSWORD: 'placeholder0redis0password0123456789abcdef',
};

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $$. */
function interpolate(value: string, vars: Env): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (match, name, op, arg) => {
      if (match === '$$') return '$';
      const current = vars[name as string];
      const unset = current === undefined || (op?.startsWith(':') && current === '');
      if (!op) return current ?? '';
      if (op.endsWith('-')) return unset ? (arg as string) : (current as string);
      if (unset) throw new Error(`required variable ${name} is not set: ${arg}`);
      return current as string;
    },
  );
}

function environmentOf(service: ComposeService, vars: Env = PLACEHOLDERS): Env {
  const raw = service.environment ?? {};
  const entries: [string, string][] = Array.isArray(raw)
    ? raw.map((item) => {
        const at = item.indexOf('=');
        return [item.slice(0, at), item.slice(at + 1)];
      })
    : Object.entries(raw).map(([key, value]) => [key, value === null ? '' : String(value)]);
  return Object.fromEntries(entries.map(([key, value]) => [key, interpolate(value, vars)]));
}

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function parseDockerfile(path: string): Instruction[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const instructions: Instruction[] = [];
  let pending = '';
  for (const line of lines) {
    if (pending === '' && /^\s*(#|$)/.test(line)) continue;
    if (/^\s*#/.test(line)) continue;
    const trimmed = line.replace(/\s+$/, '');
    if (trimmed.endsWith('\\')) {
      pending += `${trimmed.slice(0, -1)} `;
      continue;
    }
    const full = (pending + trimmed).trim();
    pending = '';
    const [keyword = '', ...rest] = full.split(/\s+/);
    instructions.push({ keyword: keyword.toUpperCase(), args: rest.join(' ') });
  }
  return instructions;
}

function dockerfileOf(name: string): string {
  const build = services[name]?.build;
  if (!build) throw new Error(`compose service ${name} has no build section`);
  return join(REPO_ROOT, build.context, build.dockerfile);
}

/** Workspace package name → its manifest's workspace `dependencies` (what runs in the image). */
function workspaceGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const dirs = ['apps', 'packages', 'infra'].flatMap((group) =>
    readdirSync(join(REPO_ROOT, group)).map((name) => join(REPO_ROOT, group, name)),
  );
  for (const dir of [...dirs, join(REPO_ROOT, 'contracts')]) {
    const manifestPath = join(dir, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
    };
    const deps = { ...manifest.dependencies };
    graph.set(
      manifest.name,
      Object.entries(deps)
        .filter(([, range]) => range.startsWith('workspace:'))
        .map(([name]) => name),
    );
  }
  return graph;
}

function closure(graph: Map<string, string[]>, roots: string[]): Set<string> {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const dep of graph.get(name) ?? []) visit(dep);
  };
  for (const root of roots) visit(root);
  return seen;
}

/** Paths in the image under /app map to the repository (the build context is its root). */
function toRepoPath(value: string): string {
  return value.startsWith('/app/') ? join(REPO_ROOT, value.slice('/app/'.length)) : value;
}

async function loadConfigOf(app: string): Promise<(env: Env) => unknown> {
  const module = (await import(join(REPO_ROOT, 'apps', app, 'src', 'config.ts'))) as {
    loadConfig: (env: Env) => unknown;
  };
  return module.loadConfig;
}

/** Published ports; `ip` is the host address it is bound to (undefined: every interface). */
function publishedPorts(
  service: ComposeService,
): { ip: string | undefined; host: string; container: number; protocol: string }[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port !== 'string') {
      return {
        ip: port.host_ip,
        host: String(port.published ?? port.target),
        container: port.target,
        protocol: port.protocol ?? 'tcp',
      };
    }
    const [spec = '', protocol = 'tcp'] = port.split('/');
    // [ip:][host:]container; an IPv6 ip is in brackets ("[::1]:8545:8545").
    const bracketed = /^\[([^\]]+)\]:(.*)$/.exec(spec);
    const rest = bracketed ? (bracketed[2] ?? '') : spec;
    const parts = rest.split(':');
    const ip = bracketed ? bracketed[1] : parts.length === 3 ? parts[0] : undefined;
    const container = Number(parts.at(-1));
    const published = parts.length >= 2 ? parts.at(-2) : undefined;
    return { ip: ip || undefined, host: published || String(container), container, protocol };
  });
}

/** Host addresses that reach only this host. */
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** A compose duration ("30s", "1m30s", "500ms") in ms. */
function durationMs(value: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)];
  expect(parts.map((part) => part[0]).join(''), `duration ${value}`).toBe(value);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * (units[unit as string] ?? 0), 0);
}

/** Every string in a parsed YAML tree. */
function stringsOf(node: unknown): string[] {
  if (typeof node === 'string') return [node];
  if (Array.isArray(node)) return node.flatMap(stringsOf);
  if (node && typeof node === 'object') return Object.values(node).flatMap(stringsOf);
  return [];
}

/** A host bind mount `source:target[:mode]` of a service, by its target. */
function mountAt(service: ComposeService, target: string): { source: string; mode?: string } {
  for (const volume of service.volumes ?? []) {
    const [source = '', at, mode] = interpolate(volume, {}).split(':');
    if (at === target) return { source, mode };
  }
  throw new Error(`no volume mounted at ${target}`);
}

/** `--flag=value` arguments of a command line. */
function flagsOf(args: string[]): Map<string, string[]> {
  const flags = new Map<string, string[]>();
  for (const arg of args) {
    const match = /^(--[a-z-]+)=(.*)$/.exec(arg);
    if (match)
      flags.set(match[1] as string, [...(flags.get(match[1] as string) ?? []), match[2] as string]);
  }
  return flags;
}

describe('docker', () => {
  it('default: every app has a compose service built from its own Dockerfile', () => {
    for (const app of SERVICES) {
      const service = services[app];
      expect(service, `compose service ${app}`).toBeDefined();
      expect(service?.build?.context, `${app} build context`).toBe('.');
      expect(service?.build?.dockerfile).toBe(`infra/docker/${app}.Dockerfile`);
      expect(existsSync(dockerfileOf(app)), `${dockerfileOf(app)} exists`).toBe(true);
    }
    for (const name of ['redis', 'postgres', 'anvil', 'deploy'])
      expect(services[name], name).toBeDefined();
    expect(services.anvil?.image).toMatch(/^ghcr\.io\/foundry-rs\/foundry:/);
    expect(services.anvil?.command).toEqual(
      expect.arrayContaining(['--host', '0.0.0.0', '--block-time', '1']),
    );
    expect(services.redis?.command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
  });

  it("behavior: each service's config loads from its compose environment", async () => {
    for (const app of SERVICES) {
      const service = services[app] as ComposeService;
      const env = environmentOf(service);
      for (const [key, value] of Object.entries(env)) {
        if (!value?.startsWith('/app/')) continue;
        const local = toRepoPath(value);
        // The demo page is built inside the image (checked below); here any directory will do.
        env[key] = existsSync(local) ? local : key === 'WEB_DIST_DIR' ? tmpdir() : local;
      }
      const loadConfig = await loadConfigOf(app);
      try {
        loadConfig(env);
      } catch (error) {
        throw new Error(
          `${app}: its compose environment does not configure it: ${(error as Error).message}`,
        );
      }
    }
  });

  it('error: the check fails when a required variable is missing from compose', async () => {
    const env = environmentOf(services['signaling-gateway'] as ComposeService);
    delete env.JWT_SECRET;
    delete env.WEB_DIST_DIR;
    const loadConfig = await loadConfigOf('signaling-gateway');
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() =>
      environmentOf(services['signaling-gateway'] as ComposeService, {
        REDIS_PASSWORD: PLACEHOLDERS.REDIS_PASSWORD,
      }),
    ).toThrow(/JWT_SECRET/);
  });

  it('behavior: every Dockerfile is multi-stage node:20-bookworm-slim, installs its closure frozen, runs non-root under tsx', () => {
    const graph = workspaceGraph();
    const images = [
      ...SERVICES.map((app) => ({ name: app, entry: `apps/${app}/src/main.ts` })),
      { name: 'deploy', entry: 'infra/stack/src/deploy.ts' },
    ];
    for (const { name, entry } of images) {
      const path = dockerfileOf(name);
      const instructions = parseDockerfile(path);
      const froms = instructions.filter((i) => i.keyword === 'FROM');
      expect(froms.length, `${name}: stages`).toBeGreaterThanOrEqual(2);
      for (const from of froms)
        expect(from.args, `${name}: base image`).toMatch(/^node:20-bookworm-slim\b/);

      const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
      const install = runs.find((run) => run.includes('pnpm install'));
      expect(install, `${name}: pnpm install`).toBeDefined();
      expect(install).toContain('--frozen-lockfile');
      const pkg = name === 'deploy' ? '@streamanchor/stack' : `@streamanchor/${name}`;
      expect(install).toContain(`--filter "${pkg}..."`);
      expect(install, `${name}: the root (tsx) is installed`).toMatch(/--filter streamanchor\b/);
      expect(
        runs.some((run) => run.includes('corepack enable')),
        `${name}: corepack`,
      ).toBe(true);

      const selected = [...(install ?? '').matchAll(/--filter "([^"]+)\.\.\."/g)].map(
        (m) => m[1] as string,
      );
      const deps = closure(graph, selected);
      if (deps.has('@streamanchor/contracts')) {
        expect(
          runs.some((run) => run.includes('pnpm --filter @streamanchor/contracts build')),
          `${name} imports @streamanchor/contracts, so it must generate its ABI`,
        ).toBe(true);
      }

      // Every COPY source (not from another stage) exists in the build context.
      for (const copy of instructions.filter((i) => i.keyword === 'COPY')) {
        if (/--from=/.test(copy.args)) continue;
        const parts = copy.args.split(/\s+/).filter((part) => !part.startsWith('--'));
        for (const source of parts.slice(0, -1)) {
          expect(existsSync(join(REPO_ROOT, source)), `${name}: COPY source ${source}`).toBe(true);
        }
      }

      const users = instructions.filter((i) => i.keyword === 'USER');
      expect(users.at(-1)?.args, `${name}: runs as`).toBeDefined();
      expect(users.at(-1)?.args).not.toMatch(/^(root|0)(:|$)/);
      const cmd = JSON.parse(
        instructions.filter((i) => i.keyword === 'CMD').at(-1)?.args ?? '[]',
      ) as string[];
      expect(cmd, `${name}: CMD`).toEqual(['node', '--import', 'tsx', entry]);
      expect(existsSync(join(REPO_ROOT, entry)), `${entry} exists`).toBe(true);
    }
    const gateway = parseDockerfile(dockerfileOf('signaling-gateway'));
    expect(
      gateway.some(
        (i) => i.keyword === 'RUN' && i.args.includes('pnpm --filter @streamanchor/web build'),
      ),
    ).toBe(true);
    const gatewayEnv = environmentOf(services['signaling-gateway'] as ComposeService);
    expect(gatewayEnv.WEB_DIST_DIR).toBe('/app/apps/web/dist');

    // The relay's image carries the libjuice#355 fix (TURN over TCP/TLS): applied after the
    // install, by the script that exists.
    const relayRuns = parseDockerfile(dockerfileOf('rtc-relay'))
      .filter((i) => i.keyword === 'RUN')
      .map((i) => i.args);
    const patchAt = relayRuns.findIndex((run) =>
      run.includes('apps/rtc-relay/scripts/patch-native.ts'),
    );
    expect(patchAt, 'rtc-relay: patch-native.ts runs').toBeGreaterThan(
      relayRuns.findIndex((run) => run.includes('pnpm install')),
    );
    expect(existsSync(join(REPO_ROOT, 'apps/rtc-relay/scripts/patch-native.ts'))).toBe(true);
  });

  it('behavior: .dockerignore keeps dependencies, local state and build output out of the context', () => {
    const ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim());
    for (const entry of [
      '.git',
      '**/node_modules',
      '**/.data',
      '**/dist',
      '.env',
      'contracts/out',
      '**/src/generated',
    ]) {
      expect(ignore, entry).toContain(entry);
    }
  });

  it('behavior: the relay publishes exactly one UDP port, equal to its ICE_UDP_PORT', () => {
    const relay = services['rtc-relay'] as ComposeService;
    const env = environmentOf(relay);
    const udp = publishedPorts(relay).filter((port) => port.protocol === 'udp');
    expect(udp).toHaveLength(1);
    expect(udp[0]?.container).toBe(Number(env.ICE_UDP_PORT));
    // The relay advertises its own port in its candidates, so the published port must match.
    expect(udp[0]?.host).toBe(String(env.ICE_UDP_PORT));
    expect(env.ICE_BIND_ADDRESS).toBe('0.0.0.0');
    const gatewayPorts = publishedPorts(services['signaling-gateway'] as ComposeService);
    const gatewayEnv = environmentOf(services['signaling-gateway'] as ComposeService);
    expect(gatewayPorts.map((port) => port.container)).toContain(Number(gatewayEnv.PORT));
    for (const app of ['chain-writer', 'chain-indexer'])
      expect(services[app]?.ports ?? []).toEqual([]);
  });

  it('behavior: anvil (unlocked accounts) is published on loopback only, or not at all', () => {
    const anvilPort = 8545;
    for (const [name, service] of Object.entries(services)) {
      for (const port of publishedPorts(service)) {
        if (name !== 'anvil' && port.container !== anvilPort) continue;
        expect(port.ip, `${name} publishes ${port.container} on every interface`).toBeDefined();
        expect(LOOPBACK.has(port.ip as string), `${name} binds ${port.ip}`).toBe(true);
      }
    }
    for (const name of ['redis', 'postgres']) expect(services[name]?.ports ?? [], name).toEqual([]);
  });

  it('behavior: Redis requires a password and every REDIS_URL carries it', () => {
    const redis = services.redis as ComposeService;
    const command = (redis.command as string[]).map((arg) => interpolate(arg, PLACEHOLDERS));
    const at = command.indexOf('--requirepass');
    expect(at, 'redis-server --requirepass').toBeGreaterThan(-1);
    expect(command[at + 1]).toBe(PLACEHOLDERS.REDIS_PASSWORD);
    // The healthcheck authenticates too (redis-cli reads REDISCLI_AUTH).
    expect(environmentOf(redis).REDISCLI_AUTH).toBe(PLACEHOLDERS.REDIS_PASSWORD);
    // The password has no default: compose refuses to start without one.
    expect(() => (redis.command as string[]).map((arg) => interpolate(arg, {}))).toThrow(
      /REDIS_PASSWORD/,
    );

    const users = Object.entries(services).filter(
      ([, service]) => 'REDIS_URL' in environmentOf(service),
    );
    expect(users.map(([name]) => name).sort()).toEqual([...SERVICES].sort());
    for (const [name, service] of users) {
      const url = new URL(environmentOf(service).REDIS_URL as string);
      expect(url.protocol, name).toMatch(/^rediss?:$/);
      expect(decodeURIComponent(url.password), `${name}: REDIS_URL has the password`).toBe(
        PLACEHOLDERS.REDIS_PASSWORD,
      );
      expect(url.hostname, name).toBe('redis');
      expect(() => environmentOf(service, { ...PLACEHOLDERS, REDIS_PASSWORD: undefined })).toThrow(
        /REDIS_PASSWORD/,
      );
    }
  });

  it('behavior: every service healthchecks /readyz on its ops port, which no service publishes', () => {
    for (const app of SERVICES) {
      const service = services[app] as ComposeService;
      const env = environmentOf(service);
      expect(env.OPS_HOST, `${app}: OPS_HOST`).toBe('0.0.0.0');
      expect(env.OPS_PORT ?? String(OPS_PORT), `${app}: OPS_PORT`).toBe(String(OPS_PORT));
      const test = JSON.stringify(service.healthcheck?.test ?? '');
      expect(test, `${app}: healthcheck`).toContain(`http://127.0.0.1:${OPS_PORT}/readyz`);
    }
    // The gateway's healthcheck also keeps asking its public port's /healthz.
    const gateway = services['signaling-gateway'] as ComposeService;
    expect(JSON.stringify(gateway.healthcheck?.test)).toContain(
      `http://127.0.0.1:${environmentOf(gateway).PORT}/healthz`,
    );
    for (const [name, service] of Object.entries(services)) {
      for (const port of publishedPorts(service))
        expect(port.container, `${name} publishes the ops port`).not.toBe(OPS_PORT);
    }
  });

  it('behavior: the gateway is published on loopback only (the tunnel is its public way in)', () => {
    const ports = publishedPorts(services['signaling-gateway'] as ComposeService);
    expect(ports.length).toBeGreaterThan(0);
    for (const port of ports) expect(LOOPBACK.has(port.ip ?? ''), `binds ${port.ip}`).toBe(true);
  });

  it("behavior: the relay's stop_grace_period covers its drain, its close grace and a margin", () => {
    const relay = services['rtc-relay'] as ComposeService;
    const env = environmentOf(relay);
    const defaults = RelayConfigSchema.properties as Record<string, { default?: number }>;
    const drain = Number(env.DRAIN_TIMEOUT_MS ?? defaults.DRAIN_TIMEOUT_MS?.default);
    const close = Number(env.CLOSE_GRACE_MS ?? defaults.CLOSE_GRACE_MS?.default);
    expect(drain).toBeGreaterThan(0);
    expect(close).toBeGreaterThan(0);
    expect(durationMs(relay.stop_grace_period ?? '10s')).toBeGreaterThanOrEqual(
      drain + close + 3_000,
    );
  });

  it('behavior: depends_on targets exist, and the chain services wait for the deployment', () => {
    for (const [name, service] of Object.entries(services)) {
      const deps = Array.isArray(service.depends_on)
        ? service.depends_on
        : Object.keys(service.depends_on ?? {});
      for (const dep of deps) expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
    }
    for (const app of ['chain-writer', 'chain-indexer', 'signaling-gateway']) {
      const deps = services[app]?.depends_on as Record<string, { condition?: string }>;
      expect(deps.deploy?.condition, `${app} waits for deploy`).toBe(
        'service_completed_successfully',
      );
    }
  });

  it("behavior: CONTRACT_ADDRESS is where the deploy job's first transaction puts the contract", () => {
    const deployEnv = environmentOf(services.deploy as ComposeService);
    expect(deployEnv.DEPLOYER_PRIVATE_KEY).toBe(ANVIL_TEST_PRIVATE_KEY);
    const expected = getContractAddress({
      from: privateKeyToAccount(ANVIL_TEST_PRIVATE_KEY).address,
      nonce: 0n,
    });
    expect(deployEnv.EXPECTED_CONTRACT_ADDRESS).toBe(expected);
    for (const app of ['chain-writer', 'chain-indexer', 'signaling-gateway']) {
      expect(environmentOf(services[app] as ComposeService).CONTRACT_ADDRESS, app).toBe(expected);
    }
  });
});

describe('docker: the public edge (profile public: coturn and cloudflared)', () => {
  const coturn = services.coturn as ComposeService;
  const cloudflared = services.cloudflared as ComposeService;
  const gatewayEnv = environmentOf(services['signaling-gateway'] as ComposeService);
  const relay = services['rtc-relay'] as ComposeService;

  /** coturn's start script (`sh -c <script>`), with compose's `$$` escapes undone. */
  const coturnScript = interpolate(
    (Array.isArray(coturn?.command) ? coturn.command[0] : coturn?.command) ?? '',
    {},
  );

  /** Runs coturn's start script with a stand-in turnserver that prints its arguments. */
  function runCoturnScript(env: Env): { status: number | null; args: string[]; stderr: string } {
    const bin = mkdtempSync(join(tmpdir(), 'sa-coturn-'));
    const fake = join(bin, 'turnserver');
    writeFileSync(fake, '#!/bin/sh\nprintf \'%s\\n\' "$@"\n');
    chmodSync(fake, 0o755);
    const result = spawnSync('/bin/sh', ['-c', coturnScript], {
      env: { PATH: `${bin}:/usr/bin:/bin`, ...env },
      encoding: 'utf8',
    });
    return {
      status: result.status,
      args: result.stdout.split('\n').filter((line) => line !== ''),
      stderr: result.stderr,
    };
  }

  it('default: coturn and cloudflared exist, only in profile public, from pinned images', () => {
    for (const name of EDGE) {
      const service = services[name] as ComposeService;
      expect(service, name).toBeDefined();
      expect(service.profiles, `${name}: profiles`).toEqual([PUBLIC_PROFILE]);
      const image = service.image ?? '';
      expect(image, `${name}: image`).toMatch(/^[a-z0-9./-]+:[0-9][\w.-]*$/);
      expect(image, `${name}: pinned`).not.toMatch(/:(latest|stable)$/);
    }
    expect(coturn.image).toMatch(/^coturn\/coturn:\d+\.\d+\.\d+/);
    expect(cloudflared.image).toMatch(/^cloudflare\/cloudflared:\d{4}\.\d+\.\d+$/);
    // Everything else runs without a profile: `docker compose up` is the whole local stack.
    for (const [name, service] of Object.entries(services))
      if (!EDGE.includes(name)) expect(service.profiles, name).toBeUndefined();
  });

  it('behavior: the local stack needs only JWT_SECRET and REDIS_PASSWORD (compose interpolates every profile)', () => {
    // Compose interpolates the whole file before it drops the services of inactive profiles,
    // so a `${VAR:?}` anywhere would make `docker compose up` demand that variable.
    const required = new Set<string>();
    for (const value of stringsOf(compose)) {
      for (const match of value.matchAll(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*):?\?/g))
        if (match[1]) required.add(match[1]);
      expect(() => interpolate(value, PLACEHOLDERS)).not.toThrow();
    }
    expect([...required].sort()).toEqual(Object.keys(PLACEHOLDERS).sort());
  });

  it('behavior: secrets come only from the environment, never as literals', () => {
    const SECRET = /SECRET|PASSWORD|TOKEN|PRIVATE_KEY|KEY_ID|AUTH/;
    /** `${NAME:-}`: the variable's value, empty when unset. */
    const fromEnv = (name: string) => `\${${name}:-}`;
    // The local stack's documented dev defaults (anvil's public test key; Postgres, which
    // publishes no port); docs/deploy.md replaces both.
    const devDefaults = new Set([
      `\${WRITER_PRIVATE_KEY:-${ANVIL_TEST_PRIVATE_KEY}}`,
      `\${DEPLOYER_PRIVATE_KEY:-${ANVIL_TEST_PRIVATE_KEY}}`,
      `\${POSTGRES_PASSWORD:-streamanchor}`,
    ]);
    for (const [name, service] of Object.entries(services)) {
      const raw = service.environment ?? {};
      const entries = Array.isArray(raw)
        ? raw.map((item) => item.split(/=(.*)/s) as [string, string])
        : Object.entries(raw).map(([key, value]) => [key, String(value ?? '')] as const);
      for (const [key, value] of entries) {
        if (!SECRET.test(key)) continue;
        if (devDefaults.has(value)) continue;
        expect(value, `${name}: ${key}`).toMatch(/^\$\{([A-Z][A-Z0-9_]*)(:\?[^}]+|:-)?\}$/);
      }
    }
    // The edge's secrets: from the environment, required by the containers themselves.
    expect(coturn.environment).toMatchObject({
      TURN_SECRET: fromEnv('TURN_SECRET'),
      TURN_EXTERNAL_IP: fromEnv('TURN_EXTERNAL_IP'),
    });
    expect(cloudflared.environment).toEqual({ TUNNEL_TOKEN: fromEnv('CLOUDFLARE_TUNNEL_TOKEN') });
    expect(JSON.stringify(cloudflared.command)).not.toMatch(/token/i);
    // The committed coturn config holds no secret (it comes on the command line).
    const conf = readFileSync(join(REPO_ROOT, 'infra/coturn/turnserver.conf'), 'utf8');
    expect(conf).not.toMatch(/^\s*static-auth-secret\s*=/m);
    expect(conf).toMatch(/^use-auth-secret\s*$/m);
  });

  it("behavior: coturn runs on the host's network with the mounted hardened config, certificates and the gateway's TURN_SECRET", () => {
    expect(coturn.network_mode).toBe('host');
    expect(coturn.ports ?? []).toEqual([]);
    const conf = mountAt(coturn, '/etc/coturn/turnserver.conf');
    expect(conf.source).toBe('./infra/coturn/turnserver.conf');
    expect(conf.mode).toBe('ro');
    expect(existsSync(join(REPO_ROOT, conf.source)), 'infra/coturn/turnserver.conf exists').toBe(
      true,
    );
    const confText = readFileSync(join(REPO_ROOT, conf.source), 'utf8');
    const setting = (key: string) =>
      new RegExp(`^${key}=(\\S+)`, 'm').exec(confText)?.[1] ?? undefined;
    // The certificate paths coturn reads are inside the mounted certificate directory.
    const certs = mountAt(coturn, '/etc/coturn/certs');
    expect(certs.mode).toBe('ro');
    for (const key of ['cert', 'pkey'])
      expect(setting(key), key).toMatch(/^\/etc\/coturn\/certs\//);
    // coturn's relay ports (host network) do not collide with the relay's published UDP port.
    const relayPort = Number(environmentOf(relay).ICE_UDP_PORT);
    const [min, max] = [Number(setting('min-port')), Number(setting('max-port'))];
    expect(min).toBeGreaterThan(0);
    expect(relayPort < min || relayPort > max, `ICE_UDP_PORT ${relayPort} in ${min}-${max}`).toBe(
      true,
    );

    const ok = runCoturnScript({
      TURN_SECRET: 'placeholder-turn-secret-0123456789',
      TURN_EXTERNAL_IP: '203.0.113.7',
    });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.args.slice(0, 2)).toEqual(['-c', '/etc/coturn/turnserver.conf']);
    const flags = flagsOf(ok.args);
    expect(flags.get('--static-auth-secret')).toEqual(['placeholder-turn-secret-0123456789']);
    expect(flags.get('--external-ip')).toEqual(['203.0.113.7']);
    // The one private peer coturn may relay to: the rtc-relay's fixed compose address, inside
    // the compose network's subnet.
    const relayNetworks = relay.networks as Record<string, { ipv4_address?: string }>;
    const relayIp = relayNetworks.default?.ipv4_address as string;
    expect(flags.get('--allowed-peer-ip')).toEqual([relayIp]);
    const subnet = compose.networks?.default?.ipam?.config?.[0]?.subnet ?? '';
    const [base = '', bits = '32'] = subnet.split('/');
    const toInt = (ip: string) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
    const mask = 2 ** (32 - Number(bits));
    expect(Math.floor(toInt(relayIp) / mask), `${relayIp} in ${subnet}`).toBe(
      Math.floor(toInt(base) / mask),
    );
    // The gateway hands out credentials for the same secret.
    expect(
      environmentOf(services['signaling-gateway'] as ComposeService, {
        ...PLACEHOLDERS,
        TURN_SECRET: 'placeholder-turn-secret-0123456789',
      }).TURN_SECRET,
    ).toBe('placeholder-turn-secret-0123456789');
  });

  it('error: coturn refuses to start without TURN_SECRET or TURN_EXTERNAL_IP, or with a short secret', () => {
    const missingSecret = runCoturnScript({ TURN_EXTERNAL_IP: '203.0.113.7' });
    expect(missingSecret.status).not.toBe(0);
    expect(missingSecret.stderr).toMatch(/TURN_SECRET/);
    expect(missingSecret.args).toEqual([]);
    const missingIp = runCoturnScript({ TURN_SECRET: 'placeholder-turn-secret-0123456789' });
    expect(missingIp.status).not.toBe(0);
    expect(missingIp.stderr).toMatch(/TURN_EXTERNAL_IP/);
    const short = runCoturnScript({ TURN_SECRET: 'short', TURN_EXTERNAL_IP: '203.0.113.7' });
    expect(short.status).not.toBe(0);
    expect(short.stderr).toMatch(/16/);
  });

  it("behavior: the gateway's coturn and cloudflare ICE settings come through compose", async () => {
    const loadConfig = await loadConfigOf('signaling-gateway');
    const gateway = services['signaling-gateway'] as ComposeService;
    const withDist = (env: Env) => ({ ...env, WEB_DIST_DIR: tmpdir() });
    expect(gatewayEnv.ICE_PROVIDER).toBe('none');
    const coturnEnv = environmentOf(gateway, {
      ...PLACEHOLDERS,
      ICE_PROVIDER: 'coturn',
      TURN_URLS:
        'turn:turn.example.com:3478?transport=udp,turn:turn.example.com:3478?transport=tcp,turns:turn.example.com:5349?transport=tcp',
      TURN_SECRET: 'placeholder-turn-secret-0123456789',
      ICE_STUN_URLS: 'stun:turn.example.com:3478',
    });
    expect(() => loadConfig(withDist(coturnEnv))).not.toThrow();
    expect(() =>
      loadConfig(withDist(environmentOf(gateway, { ...PLACEHOLDERS, ICE_PROVIDER: 'coturn' }))),
    ).toThrow(ConfigError);
    const cloudflareEnv = environmentOf(gateway, {
      ...PLACEHOLDERS,
      ICE_PROVIDER: 'cloudflare',
      CLOUDFLARE_TURN_KEY_ID: 'placeholder-key-id',
      CLOUDFLARE_TURN_API_TOKEN: 'placeholder-api-token',
    });
    expect(() => loadConfig(withDist(cloudflareEnv))).not.toThrow();
  });

  it('behavior: cloudflared runs the tunnel from its token, after the gateway is healthy, with the mounted ingress', () => {
    const command = cloudflared.command as string[];
    expect(command[0]).toBe('tunnel');
    expect(command).toContain('--no-autoupdate');
    expect(command.at(-1)).toBe('run');
    const config = mountAt(cloudflared, command[command.indexOf('--config') + 1] as string);
    expect(config.source).toBe('./infra/cloudflared/config.yml');
    expect(config.mode).toBe('ro');
    const deps = cloudflared.depends_on as Record<string, { condition?: string }>;
    expect(deps['signaling-gateway']?.condition).toBe('service_healthy');
    expect(cloudflared.ports ?? []).toEqual([]);
    expect(cloudflared.network_mode).toBeUndefined();
  });

  it("behavior: the tunnel's ingress sends its host names to the gateway's port and ends with a 404 catch-all", () => {
    const ingressConfig = parse(
      readFileSync(join(REPO_ROOT, 'infra/cloudflared/config.yml'), 'utf8'),
    ) as {
      tunnel?: string;
      'credentials-file'?: string;
      originRequest?: Record<string, unknown>;
      ingress: { hostname?: string; path?: string; service: string }[];
    };
    // The token carries the tunnel and its secret: no credentials in the file.
    expect(ingressConfig.tunnel).toBeUndefined();
    expect(ingressConfig['credentials-file']).toBeUndefined();
    const rules = ingressConfig.ingress;
    expect(rules.length).toBeGreaterThanOrEqual(2);
    const last = rules.at(-1);
    expect(last).toEqual({ service: 'http_status:404' });
    const gatewayOrigin = `http://signaling-gateway:${gatewayEnv.PORT}`;
    for (const rule of rules.slice(0, -1)) {
      expect(rule.hostname, 'every rule but the last names its host').toMatch(/^[a-z0-9.-]+$/);
      expect(rule.service).toBe(gatewayOrigin);
      expect(rule.service).not.toContain(String(OPS_PORT));
    }
    expect(ingressConfig.originRequest).toMatchObject({ disableChunkedEncoding: true });
    expect(ingressConfig.originRequest?.connectTimeout).toBeDefined();
    expect(ingressConfig.originRequest?.keepAliveTimeout).toBeDefined();
  });
});
