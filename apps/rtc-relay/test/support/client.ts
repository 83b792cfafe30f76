import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ServerMessage } from '@streamanchor/protocol';

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = join(here, '..', '..');

export interface ClientEvent {
  event: string;
  [key: string]: unknown;
}

export interface PublishSummary {
  acks: number;
  nacks: number;
  codes: Record<string, number>;
  /** The largest `retryAfterMs` of the run's rate_limited nacks, or null. */
  retryAfterMs: number | null;
  elapsedMs: number;
  acked?: { id: string; recordId: string; contentHash: string }[];
  /** From each publish's send to its ack or nack. */
  latencyMs: { p50: number; p99: number; max: number };
  /** The client process's CPU time (all threads) during the run. */
  cpuMs: number;
}

/**
 * Drives test/support/client-process.ts: a node-datachannel peer in a child process,
 * spoken to in JSON lines.
 */
export class ClientProcess {
  private readonly events: ClientEvent[] = [];
  private readonly consumed = new Set<ClientEvent>();
  private listeners: (() => void)[] = [];
  private exited = false;

  private constructor(private readonly child: ChildProcess) {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as ClientEvent);
      } catch {
        this.events.push({ event: 'stdout', line });
      }
      for (const listener of this.listeners.splice(0)) listener();
    });
    child.once('exit', () => {
      this.exited = true;
      for (const listener of this.listeners.splice(0)) listener();
    });
  }

  /**
   * Starts test/support/client-process.ts, or `options.script` (an absolute path: another
   * script speaking JSON lines the same way, printing `{"event":"ready"}` once it reads).
   */
  static async spawn(options: { script?: string } = {}): Promise<ClientProcess> {
    const script = options.script ?? join(here, 'client-process.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: packageDir,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const client = new ClientProcess(child);
    await client.waitFor((e) => e.event === 'ready', 20_000);
    return client;
  }

  command(command: Record<string, unknown>): void {
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  /** The first event not yet taken that matches; waits for it up to timeoutMs. */
  async waitFor(match: (event: ClientEvent) => boolean, timeoutMs = 10_000): Promise<ClientEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((event) => !this.consumed.has(event) && match(event));
      if (found) {
        this.consumed.add(found);
        return found;
      }
      if (this.exited) throw new Error('client process exited');
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `client: no matching event within ${timeoutMs} ms; got ${JSON.stringify(this.events.slice(-5))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.listeners.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next server message (hello, ack, nack, receipt) matching. */
  async message(
    match: (message: ServerMessage) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<ServerMessage> {
    const event = await this.waitFor(
      (e) => e.event === 'message' && match(e.data as ServerMessage),
      timeoutMs,
    );
    return event.data as ServerMessage;
  }

  /** Every event so far (messages, open, closed, state…), in order, taken or not. */
  history(): readonly ClientEvent[] {
    return this.events;
  }

  /** Every server message received so far, in order. */
  messages(): ServerMessage[] {
    return this.events.filter((e) => e.event === 'message').map((e) => e.data as ServerMessage);
  }

  async offer(options: { label?: string; protocol?: string } = {}): Promise<string> {
    this.command({ cmd: 'offer', ...options });
    return (await this.waitFor((e) => e.event === 'offer')).sdp as string;
  }

  send(text: string): void {
    this.command({ cmd: 'send', text });
  }

  /**
   * SIGSTOP / SIGCONT the client's process: stopped, its native SCTP stack reads nothing
   * either, so the relay's buffer for it grows as for a client that stopped reading.
   */
  freeze(frozen: boolean): void {
    this.child.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  async publishMany(options: {
    count: number;
    payloadBytes: number;
    topic: string;
    idPrefix: string;
    listAcks?: boolean;
    /** Paced at this many publishes per second (default: as fast as the channel takes them). */
    ratePerSecond?: number;
    /** Each payload also carries `sentAt`: performance.timeOrigin + performance.now() at its send (ms). */
    stampSentAt?: boolean;
    timeoutMs?: number;
  }): Promise<PublishSummary> {
    const { timeoutMs = 60_000, ...rest } = options;
    this.command({ cmd: 'publish', ...rest });
    return (await this.waitFor(
      (e) => e.event === 'published',
      timeoutMs,
    )) as unknown as PublishSummary;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
