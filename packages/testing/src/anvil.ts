import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { getFreePort } from './ports';

/**
 * Anvil's first default account. This is anvil's well-known PUBLIC test key: it
 * holds value only on local dev chains. Never use it anywhere else.
 */
export const ANVIL_TEST_PRIVATE_KEY =
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80' as const;
/** Anvil's second default account (also a PUBLIC test key), for "someone else" in tests. */
export const ANVIL_TEST_PRIVATE_KEY_2 =
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d' as const;
export const ANVIL_CHAIN_ID = 31337;

/** The platform binary shipped inside @foundry-rs/anvil's optional dependency (no download). */
export function anvilBinary(): string {
  const require = createRequire(import.meta.url);
  const wrapperDir = dirname(require.resolve('@foundry-rs/anvil/package.json'));
  const platform = `${process.platform === 'win32' ? 'win32' : process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`;
  const fromWrapper = createRequire(join(wrapperDir, 'package.json'));
  const platformDir = dirname(fromWrapper.resolve(`@foundry-rs/anvil-${platform}/package.json`));
  return join(platformDir, 'bin', 'anvil');
}

export interface Anvil {
  rpcUrl: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface StartAnvilOptions {
  port?: number;
  host?: string;
  /** Interval mining in seconds; omitted means automine (a block per transaction). */
  blockTime?: number;
  chainId?: number;
  /** Extra CLI arguments. */
  args?: string[];
  /**
   * Run anvil in its own process group, so a terminal's Ctrl-C reaches only the parent
   * (which then stops anvil itself, after the services that use it). Default false.
   */
  detached?: boolean;
}

/** Starts a real anvil and resolves once it listens. */
export async function startAnvil(options: StartAnvilOptions = {}): Promise<Anvil> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await getFreePort());
  const args = [
    '--host',
    host,
    '--port',
    String(port),
    '--chain-id',
    String(options.chainId ?? ANVIL_CHAIN_ID),
  ];
  if (options.blockTime !== undefined) args.push('--block-time', String(options.blockTime));
  args.push(...(options.args ?? []));
  const child = spawn(anvilBinary(), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`anvil did not start within 30 s:\n${output}`)),
      30_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Listening on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`anvil exited with code ${code}:\n${output}`));
    });
  });
  // Keep draining so a full pipe never blocks anvil.
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    rpcUrl: `http://${host}:${port}`,
    port,
    process: child,
    stop: () => stopChild(child),
  };
}

export async function stopChild(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
