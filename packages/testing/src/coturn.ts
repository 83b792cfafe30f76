import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** coturn's server (apt-get install coturn); TURNSERVER_PATH overrides. */
export const TURNSERVER_PATH = process.env.TURNSERVER_PATH ?? 'turnserver';

export interface TurnserverProcess {
  /** The temporary folder of its pidfile and database (removed by `close`). */
  dir: string;
  /** What coturn printed (for failure messages). */
  log(): string;
  close(): Promise<void>;
}

export interface RunTurnserverOptions {
  /**
   * The turnserver arguments (its pidfile and database in `dir` are added), given the
   * temporary folder, e.g. to write a config file into it.
   */
  args(dir: string): string[];
  /** Runs it through another command, e.g. `['ip', 'netns', 'exec', ns]`. */
  wrapper?: readonly string[];
  /** Polled until true: coturn is ready (e.g. `stunBindingAnswered` on its port). */
  ready(): Promise<boolean>;
  /** How long it may take to be ready (default 10,000 ms). */
  timeoutMs?: number;
}

/**
 * Starts a real coturn and resolves once `ready()` says so. Fails with coturn's output when
 * it exits at start or is not ready in time; `close()` stops it (SIGTERM, then SIGKILL) and
 * removes its folder.
 */
export async function runTurnserver(options: RunTurnserverOptions): Promise<TurnserverProcess> {
  const found = spawnSync(TURNSERVER_PATH, ['--version'], { encoding: 'utf8' });
  if (found.error) {
    throw new Error(
      `${TURNSERVER_PATH} not found: apt-get install -y coturn (or set TURNSERVER_PATH)`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'sa-coturn-'));
  const args = [
    ...options.args(dir),
    `--pidfile=${join(dir, 'turnserver.pid')}`,
    `--db=${join(dir, 'turndb')}`,
  ];
  const [command, ...before] = [...(options.wrapper ?? []), TURNSERVER_PATH];
  let output = '';
  const child: ChildProcess = spawn(command!, [...before, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const close = async () => {
    if (running()) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
    if (running()) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!running()) {
      await close();
      throw new Error(`turnserver exited at start:\n${output}`);
    }
    if (await options.ready()) break;
    if (Date.now() > deadline) {
      await close();
      throw new Error(`turnserver did not become ready within ${timeoutMs} ms:\n${output}`);
    }
  }
  return { dir, log: () => output, close };
}

/** True when a STUN Binding request (RFC 8489) to host:port is answered within timeoutMs. */
export function stunBindingAnswered(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<boolean> {
  const request = Buffer.alloc(20);
  request.writeUInt16BE(0x0001, 0);
  request.writeUInt32BE(0x2112a442, 4);
  randomBytes(12).copy(request, 8);
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    const done = (answered: boolean) => {
      clearTimeout(timer);
      socket.close();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('message', () => done(true));
    socket.once('error', () => done(false));
    socket.send(request, port, host);
  });
}
