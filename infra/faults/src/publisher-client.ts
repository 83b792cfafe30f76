import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export interface PublisherTotals {
  sent: number;
  acked: number;
  nacked: number;
  unanswered: number;
  sessions: number;
}

/** What an ack told the publisher: the leaf fields the relay gave the record (§5.3). */
export interface AckedRecord {
  /** The publish's id (`<name>-<counter>`). */
  id: string;
  recordId: string;
  contentHash: string;
  acceptedAt: number;
}

/**
 * Drives src/publisher.ts in a child process. Its acks are the ground truth of the fault
 * suite: every `recordId` acked here must end up stored once and anchored once.
 */
export class Publisher {
  /** recordId → its ack, for every ack received, in ack order. */
  readonly acked = new Map<string, AckedRecord>();
  readonly nacks: { id: string; code: string }[] = [];
  /** Receipts delivered over the data channel: recordId → statuses in arrival order. */
  readonly receipts = new Map<string, string[]>();
  readonly disconnects: { reason: string; unanswered: number }[] = [];
  sessions = 0;
  /** The id of each session it opened, in order (Stack.relayOf tells the relay). */
  readonly sessionIds: string[] = [];
  errors: string[] = [];
  private totals: PublisherTotals | undefined;
  private waiters: (() => void)[] = [];
  private exited = false;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    private readonly log: (line: string) => void,
  ) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    createInterface({ input: child.stderr! }).on('line', (line) => this.log(`[${name}] ${line}`));
    child.once('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  static start(options: {
    name: string;
    api: string;
    token: string;
    rate: number;
    topic?: string;
    log?: (line: string) => void;
  }): Publisher {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'publisher.ts')], {
      cwd: join(here, '..'),
      env: {
        ...process.env,
        API: options.api,
        TOKEN: options.token,
        RATE: String(options.rate),
        TOPIC: options.topic ?? 'demo',
        ID_PREFIX: `${options.name}-`,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new Publisher(options.name, child, options.log ?? ((line) => console.log(line)));
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  private onLine(line: string): void {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.log(`[${this.name}] ${line}`);
      return;
    }
    switch (event.event) {
      case 'ack':
        this.acked.set(String(event.recordId).toLowerCase(), {
          id: String(event.id),
          recordId: String(event.recordId).toLowerCase(),
          contentHash: String(event.contentHash),
          acceptedAt: Number(event.acceptedAt),
        });
        break;
      case 'nack':
        this.nacks.push({ id: String(event.id), code: String(event.code) });
        break;
      case 'receipt': {
        const recordId = String(event.recordId).toLowerCase();
        const list = this.receipts.get(recordId) ?? [];
        list.push(String(event.status));
        this.receipts.set(recordId, list);
        break;
      }
      case 'session':
        this.sessions += 1;
        this.sessionIds.push(String(event.sessionId));
        this.log(`[${this.name}] session ${String(event.sessionId)} open`);
        break;
      case 'disconnected':
        this.disconnects.push({
          reason: String(event.reason),
          unanswered: Number(event.unanswered),
        });
        this.log(
          `[${this.name}] session ended: ${String(event.reason)} (${String(event.unanswered)} unanswered)`,
        );
        break;
      case 'retry':
        if (Number(event.attempt) % 5 === 0)
          this.log(`[${this.name}] reconnecting: ${String(event.message)}`);
        break;
      case 'error':
        this.errors.push(String(event.message));
        this.log(`[${this.name}] error: ${String(event.message)}`);
        break;
      case 'done':
        this.totals = event as unknown as PublisherTotals;
        break;
      default:
        break;
    }
    this.wake();
  }

  /** Waits until `check()` holds (re-checked on every event), up to `timeoutMs`. */
  async until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.exited) throw new Error(`${this.name}: publisher exited while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: ${what} not reached within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Stops publishing; resolves with the totals once every publish was answered or left unanswered. */
  async stop(timeoutMs = 30_000): Promise<PublisherTotals> {
    if (!this.exited) this.child.stdin!.write(`${JSON.stringify({ cmd: 'stop' })}\n`);
    await this.until('all publishes answered', () => this.totals !== undefined, timeoutMs);
    return this.totals!;
  }

  /** Ends the process (after stop(), or to abandon it). */
  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
