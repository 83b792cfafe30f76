// The Ponder baseline of bench/backfill.ts (not part of the service, not a test): runs the
// minimal Ponder app of infra/bench-ponder (`ponder start`, its own workspace package, so
// Ponder is never a dependency of this service) as a child process against a fresh
// database, and times its historical sync from its own log lines.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createThrowawayPostgres, getFreePort, stopChild } from '@streamanchor/testing';

export const PONDER_ROOT = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../infra/bench-ponder',
);
/** Ponder's CLI entry, run with this node (no shell shim between us and the process to stop). */
const PONDER_BIN = join(PONDER_ROOT, 'node_modules', 'ponder', 'dist', 'esm', 'bin', 'ponder.js');

export interface PonderRun {
  /** Rows Ponder's table holds once /ready answered 200. */
  events: number;
  /** From "Started … historical sync" to "Started returning 200 responses from /ready" (Ponder's own clock). */
  seconds: number;
  /** From spawning `ponder start` to the start of the historical sync: build, database setup, migrations. */
  startupSeconds: number;
}

export function ponderAvailable(): string | undefined {
  return existsSync(PONDER_BIN)
    ? undefined
    : `${PONDER_BIN} is missing: run \`pnpm install\` (infra/bench-ponder depends on ponder)`;
}

/**
 * One `ponder start` on a fresh database (a PGlite directory in the temp dir, or a throwaway
 * Postgres database), until its historical sync is done and /ready answers 200; then counts
 * its rows through the app's GET /count and stops it. Throws when Ponder logs an error,
 * exits early, or takes longer than `timeoutMs`.
 */
export async function runPonder(options: {
  kind: 'pglite' | 'postgres';
  rpcUrl: string;
  contract: `0x${string}`;
  startBlock: bigint;
  timeoutMs?: number;
}): Promise<PonderRun> {
  const port = await getFreePort();
  const pgliteDir =
    options.kind === 'pglite' ? mkdtempSync(join(tmpdir(), 'sa-bench-ponder-')) : undefined;
  const postgres =
    options.kind === 'postgres' ? await createThrowawayPostgres('ponder') : undefined;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PONDER_TELEMETRY_DISABLED: '1',
    PONDER_RPC_URL: options.rpcUrl,
    PONDER_CONTRACT: options.contract,
    PONDER_START_BLOCK: options.startBlock.toString(),
    NODE_ENV: 'production',
  };
  delete env.DATABASE_URL;
  delete env.DATABASE_PRIVATE_URL;
  if (pgliteDir) env.PONDER_PGLITE_DIR = pgliteDir;
  if (postgres) env.DATABASE_URL = postgres.url;

  const spawned = Date.now();
  let child: ChildProcess | undefined;
  try {
    child = spawn(
      process.execPath,
      [
        PONDER_BIN,
        '--root',
        PONDER_ROOT,
        '--log-format',
        'json',
        '--log-level',
        'info',
        'start',
        '--schema',
        'bench',
        '--port',
        String(port),
        '--hostname',
        '127.0.0.1',
      ],
      { cwd: PONDER_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const running = child;
    let historicalAt: number | undefined;
    let readyAt: number | undefined;
    let failure: string | undefined;
    const output: string[] = [];
    let partial = '';
    running.stdout?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        output.push(line);
        if (output.length > 200) output.shift();
        if (!line.startsWith('{')) continue;
        let entry: { level?: number; time?: number; msg?: string };
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        const msg = entry.msg ?? '';
        if (historicalAt === undefined && /historical sync/.test(msg) && /^Started/.test(msg))
          historicalAt = entry.time;
        if (msg.includes('Started returning 200 responses from /ready')) readyAt = entry.time;
        if ((entry.level ?? 0) >= 50) failure ??= line;
      }
    });
    running.stderr?.on('data', (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.length > 200) output.shift();
    });
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    const base = `http://127.0.0.1:${port}`;
    for (;;) {
      if (failure) throw new Error(`ponder failed: ${failure}`);
      if (running.exitCode !== null)
        throw new Error(`ponder exited with ${running.exitCode}:\n${output.join('\n')}`);
      if (Date.now() > deadline)
        throw new Error(`ponder not ready within ${options.timeoutMs} ms:\n${output.join('\n')}`);
      if (readyAt !== undefined) {
        const ready = await fetch(`${base}/ready`).catch(() => undefined);
        if (ready?.status === 200) break;
      }
      await new Promise((done) => setTimeout(done, 50));
    }
    const counted = (await (await fetch(`${base}/count`)).json()) as { count: number };
    if (historicalAt === undefined)
      throw new Error(`ponder logged no historical sync start:\n${output.join('\n')}`);
    return {
      events: counted.count,
      seconds: (readyAt! - historicalAt) / 1000,
      startupSeconds: (historicalAt - spawned) / 1000,
    };
  } finally {
    if (child) await stopChild(child, 10_000);
    if (pgliteDir) rmSync(pgliteDir, { recursive: true, force: true });
    await postgres?.drop();
  }
}
