/**
 * `pnpm dev` for real: the CLI as a child process, with its own Redis prefix, data folder and
 * free ports. Processes are found through /proc by the unique REDIS_PREFIX every process of
 * the stack carries in its environment, so "no orphans" is checked, not assumed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../src/paths';

interface Running {
  child: ChildProcess;
  prefix: string;
  output: () => string;
  exited: Promise<number | null>;
}

const started: { child: ChildProcess; prefix: string; dataDir: string }[] = [];

afterEach(async () => {
  for (const { child, prefix, dataDir } of started.splice(0)) {
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const pid of processesWith(prefix)) process.kill(pid, 'SIGKILL');
    await deleteRedisPrefix(prefix);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** Pids of live processes whose environment holds REDIS_PREFIX=<prefix>. */
function processesWith(prefix: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) continue;
      if (environ.includes(`REDIS_PREFIX=${prefix}`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Command lines of the processes still carrying the prefix once they had `timeoutMs` to go. */
async function leftovers(prefix: string, timeoutMs = 20_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  while (processesWith(prefix).length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return processesWith(prefix).map(cmdline);
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function startCli(): Running {
  const prefix = testRedisPrefix('stack-cli');
  const dataDir = mkdtempSync(join(tmpdir(), 'sa-stack-cli-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'infra/stack/src/cli.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: prefix,
      DATA_DIR: dataDir,
      DATABASE_URL: '',
      JWT_SECRET: '',
      PORT: '0',
      ANVIL_PORT: '0',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push({ child, prefix, dataDir });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, prefix, output: () => output, exited };
}

async function waitForOutput(
  running: Running,
  pattern: RegExp,
  timeoutMs = 120_000,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = running.output().match(pattern);
    if (match) return match;
    if (running.child.exitCode !== null)
      throw new Error(`the CLI exited early:\n${running.output()}`);
    if (Date.now() > deadline)
      throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${running.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('pnpm dev (infra/stack/src/cli.ts)', () => {
  it('default: brings the stack up, prints where everything is, and Ctrl-C stops every process', async () => {
    const cli = startCli();
    await waitForOutput(cli, /Ctrl-C stops everything/);
    const demo = cli
      .output()
      .match(/Demo page\s+(http:\/\/127\.0\.0\.1:(\d+))\/#token=([\w-]+\.[\w-]+\.[\w-]+)/);
    expect(demo, cli.output()).not.toBeNull();
    const contract = cli.output().match(/Contract\s+(0x[0-9a-fA-F]{40})/)?.[1];
    expect(contract).toBeDefined();
    expect(cli.output()).toMatch(/Chain RPC\s+http:\/\/127\.0\.0\.1:\d+/);
    expect(cli.output()).toMatch(/Token\s+[\w-]+\.[\w-]+\.[\w-]+/);

    // The gateway answers and serves the demo page, and /v1/info names the deployed contract.
    const api = demo?.[1] as string;
    const info = (await (await fetch(`${api}/v1/info`)).json()) as {
      contract: string;
      chainId: number;
    };
    expect(info.contract.toLowerCase()).toBe(contract?.toLowerCase());
    expect(info.chainId).toBe(31337);
    const page = await fetch(`${api}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('StreamAnchor');

    const processes = processesWith(cli.prefix).map(cmdline);
    for (const part of [
      'apps/rtc-relay/src/main.ts',
      'apps/signaling-gateway/src/main.ts',
      'chain-services.ts',
      'anvil',
    ]) {
      expect(
        processes.some((line) => line.includes(part)),
        `${part} runs`,
      ).toBe(true);
    }

    cli.child.kill('SIGINT');
    expect(await cli.exited, cli.output()).toBe(0);
    expect(cli.output()).toContain('[stack] stopped');
    expect(await leftovers(cli.prefix)).toEqual([]);
  });

  it('error: a service that dies stops the rest, and the CLI exits non-zero naming it', async () => {
    const cli = startCli();
    await waitForOutput(cli, /Ctrl-C stops everything/);
    const relay = processesWith(cli.prefix).find((pid) =>
      cmdline(pid).includes('apps/rtc-relay/src/main.ts'),
    );
    expect(relay).toBeDefined();
    process.kill(relay as number, 'SIGKILL');

    expect(await cli.exited, cli.output()).toBe(1);
    expect(cli.output()).toMatch(/rtc-relay exited unexpectedly \(SIGKILL\)/);
    expect(await leftovers(cli.prefix)).toEqual([]);
  });

  it('behavior: Ctrl-C during start-up stops what was already started', async () => {
    const cli = startCli();
    await waitForOutput(cli, /\[stack\] anvil at/);
    cli.child.kill('SIGINT');
    expect(await cli.exited, cli.output()).toBe(0);
    expect(cli.output()).toContain('[stack] stopped');
    expect(await leftovers(cli.prefix)).toEqual([]);
  });

  it('behavior: even when the stack itself is killed (SIGKILL), its processes stop (no orphans)', async () => {
    const cli = startCli();
    await waitForOutput(cli, /Ctrl-C stops everything/);
    expect(processesWith(cli.prefix).length).toBeGreaterThanOrEqual(5);
    cli.child.kill('SIGKILL');
    await cli.exited;
    expect(await leftovers(cli.prefix, 30_000)).toEqual([]);
  });
});
