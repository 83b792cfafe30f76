/**
 * The `streamanchor` bin, run as child processes (node-datachannel in each, as users run
 * it) against one whole local stack: anvil, Redis under its own prefix, PGlite, every
 * service a process (startStack, as `pnpm dev` and the e2e tests start it). Nothing is
 * mocked: tokens the CLI mints open sessions at the real gateway, receipts come from the
 * real indexer and are verified against anvil.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalPayload, contentHashOf, type Receipt } from '@streamanchor/protocol';
import { verifyToken } from '@streamanchor/signaling-gateway';
import { type Stack, startStack } from '@streamanchor/stack';
import { TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PACKAGE_DIR = join(import.meta.dirname, '..');
const BIN = join(PACKAGE_DIR, 'bin', 'streamanchor.js');
const REPO_ROOT = join(PACKAGE_DIR, '..', '..');
/** Finality depth of the stack's indexer here: 3 blocks (1 block/s), so `--final` takes seconds. */
const FINALITY_DEPTH = 3;
const SECRET = 'a-test-secret-of-at-least-32-characters!';
/** The relay's publish quota per session here (records/s, and its burst). */
const SESSION_RATE = 200;
const SESSION_BURST = 100;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout's lines, parsed as JSON (throws when they are not). */
  readonly lines: Record<string, unknown>[];
}

/** The environment of every CLI run: none of the variables it reads, unless a test sets them. */
function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of [
    'JWT_SECRET',
    'JWT_AUDIENCE',
    'JWT_ISSUER',
    'STREAMANCHOR_URL',
    'STREAMANCHOR_TOKEN',
  ]) {
    delete env[key];
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

function parseLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Runs `streamanchor …args` (bin/streamanchor.js) to its end; `input` is its stdin. */
function cli(
  args: string[],
  {
    input,
    env,
    bin = BIN,
  }: { input?: string; env?: Record<string, string | undefined>; bin?: string } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin === BIN ? process.execPath : bin, bin === BIN ? [BIN, ...args] : args, {
      env: cliEnv(env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({
        code,
        stdout,
        stderr,
        get lines() {
          try {
            return parseLines(stdout);
          } catch (error) {
            throw new Error(`stdout is not JSON lines (${(error as Error).message}):\n${stdout}`);
          }
        },
      });
    });
    child.stdin.end(input ?? '');
  });
}

/** A CLI process left running; `lines` grows as it prints. With `stdin`, `write` feeds it. */
function startCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  { stdin = false }: { stdin?: boolean } = {},
) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: cliEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // A child that exited closes its stdin: what is still written is lost, not an error here.
  child.stdin.on('error', () => {});
  if (!stdin) child.stdin.end();
  const lines: Record<string, unknown>[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const complete = buffered.split('\n');
    buffered = complete.pop() ?? '';
    lines.push(...parseLines(complete.join('\n')));
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    lines,
    exited,
    stderr: () => stderr,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => child.kill(signal),
    /** Writes `line` and a line feed on its stdin (started with `stdin`). */
    write: (line: string) => child.stdin.write(`${line}\n`),
    endInput: () => child.stdin.end(),
    async waitFor(predicate: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(
            `${what}: not seen (exit ${child.exitCode})\nstdout ${JSON.stringify(lines)}\nstderr ${stderr}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
  };
}

const hashOf = (payload: unknown) => contentHashOf(canonicalPayload(payload));

/** A `batch` line of subscribe. */
interface BatchLine {
  positions: [number, number][];
  anchor: { status: string; batchId: string; revision: number; contract: string };
}

const batchLines = (lines: readonly Record<string, unknown>[]) =>
  lines.filter((line) => line.type === 'batch') as unknown as BatchLine[];

/** The batch each position's record is in, from the batch lines with status included. */
function includedBatchOf(lines: readonly Record<string, unknown>[]): Map<number, string> {
  const found = new Map<number, string>();
  for (const { positions, anchor } of batchLines(lines)) {
    if (anchor.status !== 'included') continue;
    for (const [first, last] of positions) {
      for (let position = first; position <= last; position += 1) {
        found.set(position, anchor.batchId);
      }
    }
  }
  return found;
}

describe('streamanchor (no stack)', () => {
  it('default: token mints an HS256 token whose claims are the flags, and the gateway accepts it', async () => {
    const run = await cli(
      ['token', '--sub', 'alice', '--topics', 'demo,telemetry', '--subscribe', '*', '--ttl', '600'],
      { env: { JWT_SECRET: SECRET } },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const token = run.stdout.trim();
    expect(run.stdout).toBe(`${token}\n`);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const claims = decodeJwt(token);
    expect(claims).toEqual({
      sub: 'alice',
      topics: ['demo', 'telemetry'],
      subscribe: ['*'],
      iat: expect.any(Number),
      exp: expect.any(Number),
    });
    expect(claims.exp! - claims.iat!).toBe(600);
    expect(Math.abs(claims.iat! - Date.now() / 1000)).toBeLessThan(60);
    await expect(verifyToken(token, new TextEncoder().encode(SECRET))).resolves.toMatchObject({
      sub: 'alice',
      topics: ['demo', 'telemetry'],
      subscribe: ['*'],
    });
  });

  it('behavior: token puts JWT_AUDIENCE and JWT_ISSUER into aud and iss; no --subscribe, no subscribe claim', async () => {
    const run = await cli(['token', '--sub', 'bob', '--topics', 'demo'], {
      env: { JWT_SECRET: SECRET, JWT_AUDIENCE: 'streamanchor', JWT_ISSUER: 'ops' },
    });
    expect(run.code).toBe(0);
    const claims = decodeJwt(run.stdout.trim());
    expect(claims).toMatchObject({ sub: 'bob', topics: ['demo'], aud: 'streamanchor', iss: 'ops' });
    expect(claims).not.toHaveProperty('subscribe');
    expect(claims.exp! - claims.iat!).toBe(3600);
  });

  it('error: token without JWT_SECRET exits 1 and says so', async () => {
    const run = await cli(['token', '--sub', 'alice', '--topics', 'demo']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('streamanchor token: JWT_SECRET is not set');
  });

  it('error: token with a short JWT_SECRET, a bad topic, or no topic exits 1 or 2 naming the problem', async () => {
    const [short, badTopic, noTopic, badTtl] = await Promise.all([
      cli(['token', '--sub', 'a', '--topics', 'demo'], { env: { JWT_SECRET: 'short' } }),
      cli(['token', '--sub', 'a', '--topics', 'Demo!'], { env: { JWT_SECRET: SECRET } }),
      cli(['token', '--sub', 'a'], { env: { JWT_SECRET: SECRET } }),
      cli(['token', '--sub', 'a', '--topics', 'demo', '--ttl', '0'], {
        env: { JWT_SECRET: SECRET },
      }),
    ]);
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('JWT_SECRET: Expected string length greater or equal to 32');
    expect(badTopic.code).toBe(2);
    expect(badTopic.stderr).toContain('invalid topic "Demo!"');
    expect(noTopic.code).toBe(2);
    expect(noTopic.stderr).toContain('--topics or --subscribe (or both) is required');
    expect(noTopic.stderr).toContain('usage: streamanchor token');
    expect(badTtl.code).toBe(2);
    expect(badTtl.stderr).toContain('--ttl must be a whole number ≥ 1, not "0"');
    for (const run of [short, badTopic, noTopic, badTtl]) expect(run.stdout).toBe('');
  });

  it('error: an unknown command, no command, or a missing flag exits 2 with the usage', async () => {
    const [unknown, none, noUrl, noRpc] = await Promise.all([
      cli(['frobnicate']),
      cli([]),
      cli(['publish', '--token', 't', '--topic', 'demo', '1']),
      cli(['verify', 'receipt.json']),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('streamanchor: unknown command "frobnicate"');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('usage: streamanchor <command>');
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain(
      'streamanchor publish: --url is required (or set STREAMANCHOR_URL)',
    );
    expect(noRpc.code).toBe(2);
    expect(noRpc.stderr).toContain('streamanchor verify: --rpc is required');
  });

  it('error: follow without --rpc, with a bad --contract, or with both --until-block and --count exits 2 with its usage', async () => {
    const gateway = ['--url', 'http://127.0.0.1:1', '--token', 't'];
    const [noRpc, badContract, both] = await Promise.all([
      cli(['follow', ...gateway]),
      cli(['follow', '--rpc', 'http://127.0.0.1:1', ...gateway, '--contract', '0x12']),
      cli([
        'follow',
        '--rpc',
        'http://127.0.0.1:1',
        ...gateway,
        '--until-block',
        '5',
        '--count',
        '1',
      ]),
    ]);
    for (const run of [noRpc, badContract, both]) {
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain('usage: streamanchor follow --rpc <url>');
      expect(run.stderr).toContain('give it unless you trust the gateway');
    }
    expect(noRpc.stderr).toContain('streamanchor follow: --rpc is required');
    expect(badContract.stderr).toContain('--contract "0x12" is not an address');
    expect(both.stderr).toContain('give --until-block or --count, not both');
  });

  it("behavior: the workspace links the bin: the repository root's node_modules/.bin/streamanchor runs it", async () => {
    const run = await cli(['--help'], {
      bin: join(REPO_ROOT, 'node_modules', '.bin', 'streamanchor'),
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('usage: streamanchor <command>');
    for (const command of ['token', 'publish', 'subscribe', 'verify', 'follow']) {
      expect(run.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
  });

  it('behavior: `pnpm run token …` (as the README says) is streamanchor token, with or without --', async () => {
    const pnpm = join(REPO_ROOT, 'node_modules', '.bin', 'pnpm');
    const runs = await Promise.all(
      [
        ['run', 'token', '--sub', 'demo', '--topics', 'demo'],
        ['run', 'token', '--', '--sub', 'demo', '--topics', 'demo', '--subscribe', 'demo'],
      ].map((args) =>
        cli(['--silent', '--dir', REPO_ROOT, ...args], {
          bin: pnpm,
          env: { JWT_SECRET: SECRET, JWT_AUDIENCE: 'streamanchor', JWT_ISSUER: 'ops' },
        }),
      ),
    );
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(0);
      const claims = decodeJwt(run.stdout.trim());
      expect(claims).toMatchObject({
        sub: 'demo',
        topics: ['demo'],
        aud: 'streamanchor',
        iss: 'ops',
      });
    }
    expect(decodeJwt(runs[1]!.stdout.trim()).subscribe).toEqual(['demo']);
  });
});

describe('streamanchor against the local stack', () => {
  let stack: Stack;
  let dataDir: string;
  /** A token the CLI minted with the stack's secret: publishes to and subscribes to the test topics. */
  let token: string;
  const output: string[] = [];
  const starting = new AbortController();

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'sa-cli-'));
    stack = await startStack({
      env: {
        ...process.env,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: testRedisPrefix('cli'),
        DATA_DIR: dataDir,
        DATABASE_URL: undefined,
        HOST: '127.0.0.1',
        PORT: '0',
        ANVIL_PORT: '0',
        ANVIL_BLOCK_TIME: '1',
        FINALITY_DEPTH: String(FINALITY_DEPTH),
        // A small publish quota per session, so that one test can run past it.
        PUBLISH_RATE_PER_SESSION: String(SESSION_RATE),
        PUBLISH_BURST_PER_SESSION: String(SESSION_BURST),
        JWT_SECRET: undefined,
        LOG_LEVEL: 'warn',
      },
      output: (line) => {
        output.push(line);
        if (/WARN|ERROR|FATAL/.test(line)) console.log(line);
      },
      clearRedisOnStop: true,
      signal: starting.signal,
    });
    // A service dying mid-file fails every later test with "could not reach": say why.
    void stack.failed.then(({ service, code, signal }) =>
      console.log(
        `the stack stopped: ${service} exited (${signal ?? `exit ${code}`})\n${output.slice(-30).join('\n')}`,
      ),
    );
    const minted = await cli(
      [
        'token',
        '--sub',
        'cli-test',
        '--topics',
        'args,stdin,receipts,final,live,bulk,follow,resume,chain',
        '--subscribe',
        'live,follow,resume,chain',
      ],
      { env: { JWT_SECRET: stack.jwtSecret } },
    );
    expect(minted.code, minted.stderr).toBe(0);
    token = minted.stdout.trim();
  });

  afterAll(async () => {
    starting.abort();
    await stack?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const connection = () => ['--url', stack.urls.api, '--token', token];

  it('default: publish from arguments prints one ack a record, in order; JSON arguments as JSON, others as strings', async () => {
    const run = await cli([
      'publish',
      ...connection(),
      '--topic',
      'args',
      '{"temp":21.5}',
      'hello world',
      '42',
      '"quoted"',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const payloads = [{ temp: 21.5 }, 'hello world', 42, 'quoted'];
    expect(run.lines).toEqual(
      payloads.map((payload, index) => ({
        type: 'ack',
        id: String(index + 1),
        topic: 'args',
        recordId: expect.stringMatching(/^0x[0-9a-f]{64}$/),
        contentHash: hashOf(payload),
        acceptedAt: expect.any(Number),
      })),
    );
    expect(new Set(run.lines.map((line) => line.recordId)).size).toBe(4);
  });

  it('behavior: publish with no arguments publishes each non-blank line of stdin', async () => {
    const run = await cli(['publish', '--topic', 'stdin'], {
      input: '{"n":1}\n\nplain text\r\n[1,2,3]\n   \n',
      // The connection from the environment this time.
      env: { STREAMANCHOR_URL: stack.urls.api, STREAMANCHOR_TOKEN: token },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(
      run.lines.map(({ type, id, topic, contentHash }) => ({ type, id, topic, contentHash })),
    ).toEqual([
      { type: 'ack', id: '1', topic: 'stdin', contentHash: hashOf({ n: 1 }) },
      { type: 'ack', id: '2', topic: 'stdin', contentHash: hashOf('plain text') },
      { type: 'ack', id: '3', topic: 'stdin', contentHash: hashOf([1, 2, 3]) },
    ]);
  });

  it("behavior: publish past the relay's session quota slows to its pace and retries: every record acked, in order", async () => {
    const count = 4 * SESSION_BURST;
    const run = await cli(['publish', ...connection(), '--topic', 'bulk'], {
      input: `${Array.from({ length: count }, (_, i) => i + 1).join('\n')}\n`,
    });
    // The relay closes a session after 200 refusals in a second: pacing kept it open.
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.lines.map((line) => [line.type, line.id, line.contentHash])).toEqual(
      Array.from({ length: count }, (_, i) => ['ack', String(i + 1), hashOf(i + 1)]),
    );
  });

  it('error: publish to a topic the token does not grant prints the nack and exits 1', async () => {
    const run = await cli(['publish', ...connection(), '--topic', 'elsewhere', '1', '2']);
    expect(run.code).toBe(1);
    expect(run.lines).toEqual([
      { type: 'nack', id: '1', code: 'topic_not_allowed', message: expect.any(String) },
      { type: 'nack', id: '2', code: 'topic_not_allowed', message: expect.any(String) },
    ]);
    expect(run.stderr).toContain('streamanchor publish: record 1 refused: topic_not_allowed');
    expect(run.stderr).toContain('streamanchor publish: record 2 refused: topic_not_allowed');
  });

  it('error: publish with a token the gateway refuses exits 1 with the problem (401 unauthorized)', async () => {
    const forged = await cli(['token', '--sub', 'cli-test', '--topics', 'args'], {
      env: { JWT_SECRET: 'another-secret-of-at-least-32-characters' },
    });
    const run = await cli([
      'publish',
      '--url',
      stack.urls.api,
      '--token',
      forged.stdout.trim(),
      '--topic',
      'args',
      '1',
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      `streamanchor publish: could not open a session at ${stack.urls.api}: 401 unauthorized`,
    );
  });

  it("behavior: publish --receipts prints each record's receipt; verify accepts them against anvil and refuses tampered ones", async () => {
    const published = await cli([
      'publish',
      ...connection(),
      '--topic',
      'receipts',
      '--receipts',
      '--timeout',
      '60',
      'a',
      'b',
      'c',
    ]);
    expect(published.stderr).toBe('');
    expect(published.code).toBe(0);
    const acks = published.lines.filter((line) => line.type === 'ack');
    const receiptLines = published.lines.filter((line) => line.type === 'receipt');
    expect(acks).toHaveLength(3);
    // Every ack comes before any receipt; then one receipt per record.
    expect(published.lines.slice(0, 3)).toEqual(acks);
    expect(receiptLines.map((line) => line.id).sort()).toEqual(['1', '2', '3']);
    for (const line of receiptLines) {
      const receipt = line.receipt as Receipt;
      const ack = acks.find((a) => a.id === line.id)!;
      expect(receipt).toMatchObject({
        status: 'included',
        recordId: ack.recordId,
        contentHash: ack.contentHash,
        acceptedAt: ack.acceptedAt,
        topic: 'receipts',
        subject: 'cli-test',
        chainId: stack.chainId,
        contract: stack.contractAddress.toLowerCase(),
      });
    }

    const dir = mkdtempSync(join(tmpdir(), 'sa-cli-receipts-'));
    try {
      // The publisher's whole output (acks are skipped), and one bare receipt.
      const all = join(dir, 'published.jsonl');
      writeFileSync(all, published.stdout);
      const first = receiptLines[0]!.receipt as Receipt;
      const single = join(dir, 'receipt.json');
      writeFileSync(single, JSON.stringify(first, null, 2));
      const verified = await cli([
        'verify',
        '--rpc',
        stack.urls.rpc,
        '--contract',
        stack.contractAddress,
        '--chain-id',
        String(stack.chainId),
        all,
        single,
      ]);
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.lines).toHaveLength(4);
      for (const verdict of verified.lines) {
        expect(verdict).toMatchObject({
          verdict: 'valid',
          status: 'included',
          confirmations: expect.any(Number),
        });
        expect(verdict).not.toHaveProperty('problems');
      }
      expect(verified.lines.map((line) => line.source)).toEqual([
        `${all}:4`,
        `${all}:5`,
        `${all}:6`,
        single,
      ]);
      expect(verified.stderr).toBe('streamanchor verify: 4 of 4 receipts valid\n');

      // Tampered: another subject (the leaf no longer matches, nor does the proof).
      const tampered = join(dir, 'tampered.json');
      writeFileSync(tampered, JSON.stringify({ ...first, subject: 'mallory' }));
      // Forged consistently: a leaf and a one-leaf "tree" of its own, never anchored.
      const forged = join(dir, 'forged.json');
      writeFileSync(
        forged,
        JSON.stringify({ ...first, merkleRoot: first.leafHash, proof: [], recordCount: 1 }),
      );
      const refused = await cli(['verify', '--rpc', stack.urls.rpc, tampered, forged, single]);
      expect(refused.code).toBe(1);
      expect(refused.lines.map((line) => line.verdict)).toEqual(['invalid', 'invalid', 'valid']);
      expect(refused.lines[0]).toMatchObject({
        source: tampered,
        recordId: first.recordId,
        problems: expect.arrayContaining([
          'leaf hash does not match the receipt fields',
          'Merkle proof does not lead to merkleRoot',
        ]),
      });
      expect(refused.lines[1]!.problems).toEqual(
        expect.arrayContaining([expect.stringMatching(/^on-chain root 0x[0-9a-f]{64} differs/)]),
      );
      expect(refused.stderr).toBe('streamanchor verify: 1 of 3 receipts valid\n');

      // The right receipt, but not from the contract the verifier trusts.
      const otherContract = await cli([
        'verify',
        '--rpc',
        stack.urls.rpc,
        '--contract',
        '0x000000000000000000000000000000000000dead',
        single,
      ]);
      expect(otherContract.code).toBe(1);
      expect(otherContract.lines[0]!.problems).toEqual([
        `contract ${first.contract} is not 0x000000000000000000000000000000000000dead`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('behavior: publish --final waits for final receipts, which verify accepts with --finality-depth', async () => {
    const published = await cli([
      'publish',
      ...connection(),
      '--topic',
      'final',
      '--final',
      '--timeout',
      '90',
      '{"final":true}',
    ]);
    expect(published.stderr).toBe('');
    expect(published.code).toBe(0);
    expect(published.lines.map((line) => line.type)).toEqual(['ack', 'receipt']);
    const receipt = published.lines[1]!.receipt as Receipt;
    expect(receipt.status).toBe('final');
    expect(receipt.confirmations).toBeGreaterThanOrEqual(FINALITY_DEPTH);
    const verified = await cli(
      ['verify', '--rpc', stack.urls.rpc, '--finality-depth', String(FINALITY_DEPTH), '-'],
      { input: published.stdout },
    );
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.lines).toEqual([
      expect.objectContaining({ verdict: 'valid', source: 'stdin:2', status: 'final' }),
    ]);
  });

  it('error: verify refuses a file that is not JSON, and one with no receipt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sa-cli-verify-'));
    try {
      const garbage = join(dir, 'garbage.txt');
      writeFileSync(garbage, '{"receipt":\nnot json\n');
      const acksOnly = join(dir, 'acks.jsonl');
      writeFileSync(acksOnly, '{"type":"ack","id":"1"}\n');
      const [notJson, none] = await Promise.all([
        cli(['verify', '--rpc', stack.urls.rpc, garbage]),
        cli(['verify', '--rpc', stack.urls.rpc, acksOnly]),
      ]);
      expect(notJson.code).toBe(1);
      expect(notJson.stderr).toContain(`streamanchor verify: ${garbage}: line 1 is not JSON`);
      expect(none.code).toBe(1);
      expect(none.stderr).toContain(`streamanchor verify: ${acksOnly} holds no receipt`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('behavior: subscribe in one process while publish runs in another: the subscriber prints every record, in order, then their anchoring', async () => {
    const count = 40;
    const subscriber = startCli(['subscribe', ...connection(), '--topic', 'live']);
    try {
      await subscriber.waitFor(
        () => subscriber.lines.some((line) => line.type === 'subscribed'),
        'the subscribed line',
      );
      expect(subscriber.lines[0]).toEqual({ type: 'subscribed', topic: 'live', after: 0, head: 0 });
      const payloads = Array.from({ length: count }, (_, i) => ({ seq: i + 1 }));
      const published = await cli(['publish', ...connection(), '--topic', 'live', '--receipts'], {
        input: `${payloads.map((payload) => JSON.stringify(payload)).join('\n')}\n`,
      });
      expect(published.code, published.stderr).toBe(0);
      const acks = published.lines.filter((line) => line.type === 'ack');
      expect(acks).toHaveLength(count);

      const records = () => subscriber.lines.filter((line) => line.type === 'record');
      const batches = () => batchLines(subscriber.lines);
      const batchOf = () => includedBatchOf(subscriber.lines);
      await subscriber.waitFor(
        () => records().length >= count && batchOf().size >= count,
        `${count} records and the anchoring of each`,
      );
      expect(records()).toEqual(
        acks.map((ack, index) => ({
          type: 'record',
          topic: 'live',
          position: index + 1,
          recordId: ack.recordId,
          subject: 'cli-test',
          contentHash: ack.contentHash,
          acceptedAt: ack.acceptedAt,
          payload: payloads[index],
        })),
      );
      // Each record's batch, as the subscriber learnt it, is the one its publisher's receipt names.
      const receipts = new Map<string, Receipt>(
        published.lines
          .filter((line) => line.type === 'receipt')
          .map((line) => [(line.receipt as Receipt).recordId, line.receipt as Receipt]),
      );
      const anchoredIn = batchOf();
      for (const [index, ack] of acks.entries()) {
        expect(anchoredIn.get(index + 1)).toBe(receipts.get(ack.recordId as string)?.batchId);
      }
      for (const { anchor } of batches()) {
        expect(anchor.contract).toBe(stack.contractAddress.toLowerCase());
      }

      // Ctrl-C (here SIGTERM) unsubscribes and ends it cleanly.
      subscriber.kill('SIGTERM');
      expect(await subscriber.exited).toBe(0);
      expect(subscriber.stderr()).toBe('');

      // Resuming from a position: the records after it, the same ones.
      const resumed = await cli([
        'subscribe',
        ...connection(),
        '--topic',
        'live',
        '--after',
        '35',
        '--count',
        '5',
      ]);
      expect(resumed.code, resumed.stderr).toBe(0);
      // The five are stored: read over HTTP history, each with its batch; no live part needed.
      expect(resumed.lines.map(({ batchId: _batchId, ...line }) => line)).toEqual(
        records().slice(35),
      );
      expect(resumed.lines.map((line) => line.batchId)).toEqual(
        [36, 37, 38, 39, 40].map((position) => anchoredIn.get(position)),
      );
    } finally {
      subscriber.kill();
    }
  });

  it('behavior: subscribe --after prints the stored records after a position, then goes live from the last one', async () => {
    const stored = await cli([
      'publish',
      ...connection(),
      '--topic',
      'follow',
      '--receipts',
      '--timeout',
      '60',
      ...['r1', 'r2', 'r3', 'r4', 'r5', 'r6'],
    ]);
    expect(stored.code, stored.stderr).toBe(0);
    const storedAcks = stored.lines.filter((line) => line.type === 'ack');
    const batchIds = new Map<string, string>(
      stored.lines
        .filter((line) => line.type === 'receipt')
        .map((line) => [(line.receipt as Receipt).recordId, (line.receipt as Receipt).batchId]),
    );
    const follower = startCli([
      'subscribe',
      ...connection(),
      '--topic',
      'follow',
      '--after',
      '2',
      '--count',
      '7',
    ]);
    try {
      await follower.waitFor(
        () => follower.lines.some((line) => line.type === 'subscribed'),
        'the follower going live',
      );
      // From history: the records after position 2, each with its batch; then live after 6.
      expect(follower.lines.slice(0, 5)).toEqual([
        ...storedAcks.slice(2).map((ack, index) => ({
          type: 'record',
          topic: 'follow',
          position: index + 3,
          recordId: ack.recordId,
          subject: 'cli-test',
          contentHash: ack.contentHash,
          acceptedAt: ack.acceptedAt,
          payload: `r${index + 3}`,
          batchId: batchIds.get(ack.recordId as string),
        })),
        { type: 'subscribed', topic: 'follow', after: 6, head: 6 },
      ]);
      const live = await cli(['publish', ...connection(), '--topic', 'follow', 'r7', 'r8', 'r9']);
      expect(live.code, live.stderr).toBe(0);
      expect(await follower.exited).toBe(0);
      const records = follower.lines.filter((line) => line.type === 'record');
      expect(records.map((line) => line.position)).toEqual([3, 4, 5, 6, 7, 8, 9]);
      expect(records.slice(4)).toEqual(
        live.lines.map((ack, index) => ({
          type: 'record',
          topic: 'follow',
          position: index + 7,
          recordId: ack.recordId,
          subject: 'cli-test',
          contentHash: ack.contentHash,
          acceptedAt: ack.acceptedAt,
          payload: `r${index + 7}`,
        })),
      );
      expect(follower.stderr()).toBe('');

      // --no-live: the stored records only (no session), then exit.
      const history = await cli(['subscribe', ...connection(), '--topic', 'follow', '--no-live']);
      expect(history.code, history.stderr).toBe(0);
      expect(history.lines.every((line) => line.type === 'record')).toBe(true);
      // r7–r9 may not be stored yet; the first six are.
      expect(history.lines.slice(0, 6).map((line) => [line.position, line.payload])).toEqual(
        [1, 2, 3, 4, 5, 6].map((position) => [position, `r${position}`]),
      );
    } finally {
      follower.kill();
    }
  });

  it('behavior: subscribe resumes on its own when the relay restarts: every record once, in order', async () => {
    const follower = startCli(['subscribe', ...connection(), '--topic', 'resume']);
    const records = () => follower.lines.filter((line) => line.type === 'record');
    const wentLive = () => follower.lines.filter((line) => line.type === 'subscribed');
    try {
      await follower.waitFor(() => wentLive().length === 1, 'the follower going live');
      const before = await cli(['publish', ...connection(), '--topic', 'resume', 'a', 'b', 'c']);
      expect(before.code, before.stderr).toBe(0);
      await follower.waitFor(() => records().length === 3, 'the first three records');

      // A graceful restart closes the relay's sessions; the follower goes live again after 3.
      await stack.restart('rtc-relay');
      await follower.waitFor(() => wentLive().length === 2, 'the follower live again', 90_000);
      expect(wentLive()[1]).toMatchObject({ type: 'subscribed', topic: 'resume', after: 3 });
      expect(follower.stderr()).toContain('resuming after position 3');

      const after = await cli(['publish', ...connection(), '--topic', 'resume', 'd', 'e', 'f']);
      expect(after.code, after.stderr).toBe(0);
      await follower.waitFor(() => records().length === 6, 'the next three records');
      expect(records().map((line) => [line.position, line.payload])).toEqual([
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
        [4, 'd'],
        [5, 'e'],
        [6, 'f'],
      ]);
      // The anchoring of every record, those from before the restart too (replayed on resume
      // when it happened while the relay was away), each change printed once.
      await follower.waitFor(
        () => includedBatchOf(follower.lines).size === 6,
        'an included batch line for every record',
        60_000,
      );
      const changes = batchLines(follower.lines).map(
        ({ anchor }) => `${anchor.batchId}:${anchor.revision}:${anchor.status}`,
      );
      expect(new Set(changes).size).toBe(changes.length);
      follower.kill('SIGTERM');
      expect(await follower.exited).toBe(0);
    } finally {
      follower.kill();
    }
  });

  it('error: subscribe --no-live of a topic the token may not subscribe to exits 1 with 403 topic_not_allowed', async () => {
    const run = await cli(['subscribe', ...connection(), '--topic', 'args', '--no-live']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      'streamanchor subscribe: could not read the history of args: 403 topic_not_allowed',
    );
  });

  it('error: subscribe to a topic the token does not grant for subscribing exits 1 with topic_not_allowed', async () => {
    const run = await cli(['subscribe', ...connection(), '--topic', 'args']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      'streamanchor subscribe: could not subscribe to args: topic_not_allowed',
    );
  });

  /** The records the chain follower tests look for: published once, with their receipts. */
  let chainRecords: Promise<{ acks: Record<string, unknown>[]; receipts: Receipt[] }> | undefined;
  const publishChainRecords = () => {
    chainRecords ??= (async () => {
      const run = await cli([
        'publish',
        ...connection(),
        '--topic',
        'chain',
        '--receipts',
        '--timeout',
        '60',
        ...['c1', 'c2', 'c3', 'c4', 'c5', 'c6'],
      ]);
      expect(run.code, run.stderr).toBe(0);
      return {
        acks: run.lines.filter((line) => line.type === 'ack'),
        receipts: run.lines
          .filter((line) => line.type === 'receipt')
          .map((line) => line.receipt as Receipt),
      };
    })();
    return chainRecords;
  };

  /** `follow` from the deployment block through the last block holding the chain records. */
  const followArgs = (url: string, receipts: Receipt[], ...extra: string[]) => [
    'follow',
    '--rpc',
    stack.urls.rpc,
    '--url',
    url,
    '--token',
    token,
    '--contract',
    stack.contractAddress,
    '--from-block',
    String(stack.deploymentBlock),
    '--confirmations',
    '1',
    '--until-block',
    String(Math.max(...receipts.map((receipt) => receipt.blockNumber))),
    ...extra,
  ];

  /**
   * A malicious operator, mocked: an HTTP proxy in front of the real gateway that rewrites the
   * JSON bodies of its 200 answers with `tamper` (path and query, body) before serving them.
   */
  async function hostileGateway(tamper: (url: URL, body: Record<string, unknown>) => void) {
    const server = createServer((request, response) => {
      const target = new URL(`${stack.urls.api.replace(/\/+$/, '')}${request.url}`);
      void (async () => {
        const answer = await fetch(target, {
          headers: {
            accept: request.headers.accept ?? '*/*',
            ...(request.headers.authorization && { authorization: request.headers.authorization }),
          },
        });
        let text = await answer.text();
        if (answer.status === 200 && /json/.test(answer.headers.get('content-type') ?? '')) {
          const body = JSON.parse(text) as Record<string, unknown>;
          tamper(target, body);
          text = JSON.stringify(body);
        }
        const headers: Record<string, string> = {};
        for (const name of ['content-type', 'retry-after']) {
          const value = answer.headers.get(name);
          if (value) headers[name] = value;
        }
        response.writeHead(answer.status, headers).end(text);
      })().catch((error: unknown) => response.writeHead(502).end(String(error)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => {
        server.closeAllConnections();
        return new Promise((resolve) => server.close(resolve));
      },
    };
  }

  type Leaf = { leafIndex: number; topic: string; payload: string | null; subject: string };
  const problemsOf = (run: Run) => run.lines.filter((line) => line.type === 'problem');

  it('default: follow from the deployment block verifies every anchored batch and lists every record', async () => {
    const { acks, receipts } = await publishChainRecords();
    const run = await cli(followArgs(stack.urls.api, receipts));
    expect(run.code, run.stderr).toBe(0);
    expect(problemsOf(run)).toEqual([]);
    const batches = run.lines.filter((line) => line.type === 'batch');
    expect(batches.length).toBeGreaterThan(0);
    for (const batch of batches) {
      expect(batch).toMatchObject({
        verified: true,
        batchId: expect.stringMatching(/^0x[0-9a-f]{64}$/),
        blockNumber: expect.any(Number),
      });
    }
    // Every leaf of every batch is listed, and the chain records among them, with their payloads.
    const records = run.lines.filter((line) => line.type === 'record');
    expect(records).toHaveLength(
      batches.reduce((sum, batch) => sum + Number(batch.recordCount), 0),
    );
    const byId = new Map(records.map((line) => [line.recordId, line]));
    for (const [index, ack] of acks.entries()) {
      const receipt = receipts.find((r) => r.recordId === ack.recordId)!;
      expect(byId.get(ack.recordId)).toMatchObject({
        type: 'record',
        batchId: receipt.batchId,
        leafIndex: receipt.leafIndex,
        topic: 'chain',
        subject: 'cli-test',
        contentHash: ack.contentHash,
        acceptedAt: ack.acceptedAt,
        position: index + 1,
        payload: `c${index + 1}`,
      });
    }
    expect(run.stderr).toMatch(
      new RegExp(
        `^streamanchor follow: ${batches.length} of ${batches.length} batch(es)? verified \\(${records.length} records?\\), 0 problems\\n$`,
      ),
    );
  });

  it('error: follow against a gateway that serves another payload than the anchored one reports content_mismatch, exit 1', async () => {
    const { receipts } = await publishChainRecords();
    let tampered: string | undefined;
    const gateway = await hostileGateway((url, body) => {
      if (!url.pathname.startsWith('/v1/batches/')) return;
      const leaf = (body.leaves as (Leaf & { recordId: string })[]).find(
        (l) =>
          l.topic === 'chain' &&
          l.payload !== null &&
          (tampered === undefined || l.recordId === tampered),
      );
      if (!leaf) return;
      tampered = leaf.recordId;
      leaf.payload = '"not what was anchored"';
    });
    try {
      const run = await cli(followArgs(gateway.url, receipts));
      expect(run.code).toBe(1);
      expect(problemsOf(run)).toEqual([
        expect.objectContaining({ kind: 'content_mismatch', recordId: tampered }),
      ]);
      expect(run.stderr).toContain(`streamanchor follow: content_mismatch`);
    } finally {
      await gateway.close();
    }
  });

  it('error: follow against a gateway that drops a leaf or changes a leaf field reports leaf_count / root_mismatch, exit 1', async () => {
    const { receipts } = await publishChainRecords();
    const chainBatches = new Set(receipts.map((receipt) => receipt.batchId));
    const holdsChain = (url: URL) =>
      chainBatches.has(url.pathname.split('/').at(-1) as `0x${string}`);
    const [dropping, changing] = await Promise.all([
      hostileGateway((url, body) => {
        if (url.pathname.startsWith('/v1/batches/') && holdsChain(url) && body.next === null) {
          (body.leaves as Leaf[]).pop();
        }
      }),
      hostileGateway((url, body) => {
        if (!url.pathname.startsWith('/v1/batches/') || !holdsChain(url)) return;
        const leaf = (body.leaves as Leaf[]).find((l) => l.topic === 'chain');
        if (leaf) leaf.subject = 'mallory';
      }),
    ]);
    try {
      const [dropped, changed] = await Promise.all([
        cli(followArgs(dropping.url, receipts)),
        cli(followArgs(changing.url, receipts)),
      ]);
      expect(dropped.code).toBe(1);
      const droppedKinds = new Set(problemsOf(dropped).map((problem) => problem.kind));
      expect([...droppedKinds].sort()).toEqual(['leaf_count', 'root_mismatch']);
      expect(changed.code).toBe(1);
      const changedKinds = new Set(problemsOf(changed).map((problem) => problem.kind));
      expect([...changedKinds].sort()).toEqual(['bad_leaf_hash', 'root_mismatch']);
      for (const problem of [...problemsOf(dropped), ...problemsOf(changed)]) {
        expect(chainBatches.has(problem.batchId as `0x${string}`)).toBe(true);
      }
      const unverified = (run: Run) =>
        run.lines
          .filter((line) => line.type === 'batch' && !line.verified)
          .map((line) => line.batchId);
      expect(new Set(unverified(dropped))).toEqual(chainBatches);
      expect(new Set(unverified(changed))).toEqual(chainBatches);
    } finally {
      await Promise.all([dropping.close(), changing.close()]);
    }
  });

  it('error: follow --topic reports a record the history serves that no anchored batch holds: served_not_anchored, exit 1', async () => {
    const { receipts } = await publishChainRecords();
    const forged = {
      position: 7,
      recordId: `0x${'5a'.repeat(32)}`,
      subject: 'cli-test',
      contentHash: hashOf('forged'),
      acceptedAt: Date.now(),
      payload: '"forged"',
      batchId: null,
    };
    const gateway = await hostileGateway((url, body) => {
      // The chain topic's history, with one more record after the six published.
      if (url.pathname !== '/v1/topics/chain/records') return;
      if (Number(url.searchParams.get('after') ?? 0) >= forged.position) return;
      (body.records as unknown[]).push(forged);
      body.head = forged.position;
      body.next = null;
    });
    try {
      const run = await cli(
        followArgs(
          gateway.url,
          receipts,
          '--topic',
          'chain',
          '--grace',
          '1',
          '--poll',
          '0.2',
          '--no-records',
        ),
      );
      expect(run.code).toBe(1);
      expect(problemsOf(run)).toEqual([
        expect.objectContaining({ kind: 'served_not_anchored', recordId: forged.recordId }),
      ]);
      // The six real records are in anchored batches: nothing else is reported.
      expect(run.lines.some((line) => line.type === 'record')).toBe(false);
    } finally {
      await gateway.close();
    }
  });
});

describe('streamanchor publish against a stack of two relays', () => {
  let stack: Stack;
  let dataDir: string;
  /** Publishes to and subscribes to topic `drain`, as subject `cli-drain`. */
  let token: string;
  const output: string[] = [];
  const starting = new AbortController();

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'sa-cli-drain-'));
    stack = await startStack({
      relays: 2,
      env: {
        ...process.env,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: testRedisPrefix('cli-drain'),
        DATA_DIR: dataDir,
        DATABASE_URL: undefined,
        HOST: '127.0.0.1',
        PORT: '0',
        ANVIL_PORT: '0',
        ANVIL_BLOCK_TIME: '1',
        FINALITY_DEPTH: String(FINALITY_DEPTH),
        // Below restart()'s 15 s before SIGKILL: a session left open shows in the relay's log
        // ("drain over with sessions still open") instead of a killed relay.
        DRAIN_TIMEOUT_MS: '10000',
        // No publish quota: the CLI's window stays full, so the drain finds records in flight.
        PUBLISH_RATE_PER_SESSION: '0',
        PUBLISH_RATE_PER_SUBJECT: '0',
        JWT_SECRET: undefined,
        // The gateway's "session created" lines say which relay holds a session.
        LOG_LEVEL: 'info',
      },
      output: (line) => {
        output.push(line);
        if (/WARN|ERROR|FATAL/.test(line)) console.log(line);
      },
      clearRedisOnStop: true,
      signal: starting.signal,
    });
    void stack.failed.then(({ service, code, signal }) =>
      console.log(
        `the stack stopped: ${service} exited (${signal ?? `exit ${code}`})\n${output.slice(-30).join('\n')}`,
      ),
    );
    const minted = await cli(
      ['token', '--sub', 'cli-drain', '--topics', 'drain', '--subscribe', 'drain'],
      { env: { JWT_SECRET: stack.jwtSecret } },
    );
    expect(minted.code, minted.stderr).toBe(0);
    token = minted.stdout.trim();
  });

  afterAll(async () => {
    starting.abort();
    await stack?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const connection = () => ['--url', stack.urls.api, '--token', token];

  /** The sessions the gateway created for subject cli-drain, in order (its log lines). */
  const sessionsCreated = () =>
    output
      .map((line) => /^\[signaling-gateway\] INFO\s+session created (\{.*\})$/.exec(line)?.[1])
      .filter((json) => json !== undefined)
      .map((json) => JSON.parse(json) as { sessionId: string; relayId: string; subject: string })
      .filter(({ subject }) => subject === 'cli-drain');

  /** The stack's service name of a relay id (`rtc-relay`, `rtc-relay-2`). */
  const serviceOf = (relayId: string) => {
    const index = stack.relayIds.indexOf(relayId);
    expect(index).toBeGreaterThanOrEqual(0);
    return index === 0 ? 'rtc-relay' : `rtc-relay-${index + 1}`;
  };

  it('behavior: publish survives a relay drain: every record acked exactly once, in order, the ones the drained relay did not take sent again on a new session, none stored twice, a verified final receipt for each', async () => {
    const count = 1500;
    const payload = (n: number) => ({ drain: n });
    const publisher = startCli(
      ['publish', ...connection(), '--topic', 'drain', '--final', '--timeout', '60'],
      {},
      { stdin: true },
    );
    const acks = () => publisher.lines.filter((line) => line.type === 'ack');
    const feed = (n: number) => publisher.write(JSON.stringify(payload(n)));
    try {
      // The session open (the CLI reads stdin only then), then the rest at once: the CLI
      // publishes them as fast as the relay acks, its window of 64 full, when the relay drains.
      for (let n = 1; n <= 50; n += 1) feed(n);
      await publisher.waitFor(() => acks().length === 50, 'the first 50 acks');
      for (let n = 51; n <= count; n += 1) feed(n);
      publisher.endInput();
      await publisher.waitFor(() => acks().length >= 100, 'the first 100 acks');
      const [first] = sessionsCreated();
      expect(first).toBeDefined();
      const drained = serviceOf(first!.relayId);
      // SIGTERM: the relay drains (docs/protocol.md §5.4.1), exits, and is started again.
      const restarting = stack.restart(drained);
      expect(await publisher.exited, publisher.stderr()).toBe(0);
      await restarting;

      // Every record acked once, in input order, with its content; no other line but receipts.
      const lines = publisher.lines;
      const acked = lines.filter((line) => line.type === 'ack');
      expect(acked.map(({ id, contentHash }) => [id, contentHash])).toEqual(
        Array.from({ length: count }, (_, i) => [String(i + 1), hashOf(payload(i + 1))]),
      );
      expect(new Set(acked.map((line) => line.recordId)).size).toBe(count);
      // Sent in input order across the switch: one host's clock, so acceptance times never go
      // back from one record to the next.
      const acceptedAt = acked.map((line) => line.acceptedAt as number);
      expect(acceptedAt).toEqual([...acceptedAt].sort((a, b) => a - b));
      expect(lines.filter((line) => line.type !== 'ack' && line.type !== 'receipt')).toEqual([]);

      // It said it switched, once (a 503 first is fine: the gateway may place a session on the
      // draining relay for a moment, which refuses it); nothing was refused or failed.
      const said = publisher.stderr().match(/streamanchor publish: .*/g) ?? [];
      expect(said[0]).toBe(
        'streamanchor publish: the relay is draining (relay_draining); reconnecting through the gateway',
      );
      for (const line of said.slice(1, -1)) {
        expect(line).toMatch(
          /^streamanchor publish: could not open a new session \(503 no_relay_available: .*\); again in \d+ s$/,
        );
      }
      const resending = Number(
        /^streamanchor publish: reconnected on a new session; resending the (\d+) records? the draining relay did not take$/.exec(
          said.at(-1) ?? '',
        )?.[1],
      );

      // The drained relay's own account: it acked part of the records (the drain came
      // mid-stream, the CLI's window full: publishes were in flight, and sent again), nacked
      // relay_draining the ones it read after its notice before the CLI left (none when the
      // CLI's close came first), each of which was among them, and stopped with no session
      // left: the CLI left its session at once.
      // `[rtc-relay-2] INFO  (rtc-relay) relay drained {…}`: the second relay's lines name the service.
      const drainedLog = (message: string) =>
        output
          .map(
            (line) =>
              new RegExp(
                `^\\[${drained}\\] INFO\\s+(?:\\(rtc-relay\\) )?${message} (\\{.*\\})$`,
              ).exec(line)?.[1],
          )
          .filter((json) => json !== undefined)
          .map((json) => JSON.parse(json) as Record<string, unknown>);
      expect(drainedLog('relay drained')).toEqual([expect.objectContaining({ left: 0 })]);
      const [stopped] = drainedLog('relay stopped') as {
        acks: number;
        nacks: Record<string, number>;
      }[];
      expect(stopped!.acks).toBeGreaterThan(0);
      expect(stopped!.acks).toBeLessThan(count);
      expect(resending).toBeGreaterThan(0);
      expect(resending).toBeGreaterThanOrEqual((stopped!.nacks.relay_draining ?? 0) - 1);
      // Two sessions: the second one on a relay taking sessions (the other one, or the drained
      // one's successor under the same id, which the gateway may hand the request to).
      expect(sessionsCreated()).toEqual([
        first,
        expect.objectContaining({ relayId: expect.toBeOneOf([...stack.relayIds]) }),
      ]);

      // A final receipt for every record, those acked on the drained relay's session too (over
      // HTTP), once each, and verify accepts them against anvil.
      const receipts = lines.filter((line) => line.type === 'receipt');
      const recordIdOf = new Map(acked.map((line) => [line.id, line.recordId]));
      expect(receipts.map((line) => line.id).sort((a, b) => Number(a) - Number(b))).toEqual(
        acked.map((line) => line.id),
      );
      for (const { id, receipt } of receipts as unknown as { id: string; receipt: Receipt }[]) {
        expect(receipt).toMatchObject({ status: 'final', recordId: recordIdOf.get(id) });
      }
      const verified = await cli(
        ['verify', '--rpc', stack.urls.rpc, '--finality-depth', String(FINALITY_DEPTH), '-'],
        { input: publisher.lines.map((line) => JSON.stringify(line)).join('\n') },
      );
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.lines.filter((line) => line.verdict === 'valid')).toHaveLength(count);

      // The topic holds each record once: nothing was stored twice.
      const history = await cli(['subscribe', ...connection(), '--topic', 'drain', '--no-live']);
      expect(history.code, history.stderr).toBe(0);
      const stored = history.lines.filter((line) => line.type === 'record');
      expect(stored.map((line) => line.recordId).sort()).toEqual([...recordIdOf.values()].sort());
      expect(
        stored.map((line) => (line.payload as { drain: number }).drain).sort((a, b) => a - b),
      ).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    } finally {
      publisher.kill();
    }
  }, 180_000);
});
