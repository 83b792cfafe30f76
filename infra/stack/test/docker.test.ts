/**
 * Static checks of docker-compose.yml, infra/docker/*.Dockerfile and .dockerignore.
 * Docker cannot run on this project's machines, so these files are kept correct by
 * construction and by this test: it parses them and holds them against the services'
 * own config schemas, the workspace layout and each other.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeys } from '@streamanchor/bus';
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
}

const composeText = readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as { services: Record<string, ComposeService> };
const services = compose.services;

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

  it("behavior: the relay's healthcheck reads the registry key the bus writes", () => {
    const relay = services['rtc-relay'] as ComposeService;
    const env = environmentOf(relay);
    const test = JSON.stringify(relay.healthcheck?.test ?? '');
    expect(test).toContain("process.env.REDIS_PREFIX+':relay:'+process.env.RELAY_ID");
    expect(createKeys(env.REDIS_PREFIX as string).relay(env.RELAY_ID as string)).toBe(
      `${env.REDIS_PREFIX}:relay:${env.RELAY_ID}`,
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
