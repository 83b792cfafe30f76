import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export type OutputSink = (line: string) => void;

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  /** Resolves when the process has exited (for any reason). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  /** The last lines it printed, for error messages. */
  tail(): string;
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'service', 'msg']);

/**
 * One pino JSON line → `LEVEL msg {rest}` (with `(service)` first when the line comes from
 * another service than `processName`, as in the shared chain-services process); anything
 * else is returned unchanged.
 */
export function formatLogLine(line: string, processName?: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const level = LEVELS[entry.level as number] ?? String(entry.level ?? '');
    const rest: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(entry)) if (!SKIP.has(key)) rest[key] = value;
    let extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
    if (extra.length > 400) extra = `${extra.slice(0, 400)}…`;
    const service =
      typeof entry.service === 'string' && entry.service !== processName
        ? `(${entry.service}) `
        : '';
    return `${level} ${service}${String(entry.msg ?? '')}${extra}`;
  } catch {
    return line;
  }
}

/**
 * Starts a service as a child process in its own process group (so a terminal's Ctrl-C
 * reaches only the stack, which then stops each service once, in order), with every
 * output line prefixed by `[name]`.
 */
export function startServiceProcess(options: {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string | undefined>;
  output: OutputSink;
}): ServiceProcess {
  const { name, output } = options;
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const lines: string[] = [];
  const onLine = (line: string) => {
    if (line.trim() === '') return;
    const formatted = formatLogLine(line, name);
    lines.push(formatted);
    if (lines.length > 60) lines.shift();
    output(`[${name}] ${formatted}`);
  };
  if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
  if (child.stderr) createInterface({ input: child.stderr }).on('line', onLine);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => {
      onLine(`failed to start: ${error.message}`);
      resolve({ code: -1, signal: null });
    });
  });
  return {
    name,
    child,
    exited,
    tail: () => lines.slice(-25).join('\n'),
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      const timer = setTimeout(() => {
        output(`[${name}] did not stop within ${timeoutMs} ms: SIGKILL`);
        child.kill('SIGKILL');
      }, timeoutMs);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
  };
}
