/**
 * `streamanchor publish`: publishes records over one session (the SDK's `connect` and
 * `publish`) and prints each answer as a JSON line, in input order; with `--receipts` or
 * `--final`, then each acked record's receipt.
 */
import { setMaxListeners } from 'node:events';
import { createInterface } from 'node:readline';
import { NackError, type Receipt, type StreamAnchorSession } from '@streamanchor/client';
import { TOPIC_PATTERN } from '@streamanchor/protocol';
import { parseCommandArgs, required, seconds, UsageError } from '../args';
import type { Command, Io } from '../command';
import { parsePayload } from '../payload';
import { describeError, openSession } from '../session';
import { sleep } from '../sleep';
import { releaseWebRtc } from '../webrtc';

export const PUBLISH_USAGE = `usage: streamanchor publish --url <gateway> --token <token> --topic <topic> [--receipts | --final] [--timeout <seconds>] [json ...]

Publishes each argument as one record: its JSON value, or, when it is not JSON, the
argument as a JSON string. With no argument, each non-blank line of stdin is one record.
Prints one JSON line per record, in input order (id: its 1-based number in the input):
  {"type":"ack","id","topic","recordId","contentHash","acceptedAt"}
  {"type":"nack","id","code","message"}   (nothing of it was kept)
Past the relay's publish quota (a rate_limited nack) it slows to the quota's pace and
retries the refused records.
  --receipts  then waits for each acked record's receipt (included) and prints
              {"type":"receipt","id","receipt":{…}} (a file of such lines is what
              \`streamanchor verify\` reads)
  --final     waits for each record's final receipt instead
  --timeout   gives up waiting for receipts after this many seconds (default: no limit)
Exit code 1 when any record was refused or a receipt did not come, 2 on bad usage.
Environment: STREAMANCHOR_URL and STREAMANCHOR_TOKEN stand in for --url and --token.`;

/**
 * Publishes awaiting their answer at once. Well below the refused messages per second after
 * which the relay closes a session (REFUSALS_CLOSE_AFTER, 200 by default): when the quota
 * runs out, at most this many are refused before the pacing below takes over.
 */
const WINDOW = 64;
/** A rate_limited record is tried this many more times. */
const RATE_LIMIT_RETRIES = 20;
const TOPIC_NAME = new RegExp(TOPIC_PATTERN);

type Outcome =
  | {
      type: 'ack';
      id: string;
      recordId: `0x${string}`;
      contentHash: `0x${string}`;
      acceptedAt: number;
    }
  | { type: 'nack'; id: string; code: string; message: string }
  | { type: 'error'; id: string; message: string };

export const publish: Command = {
  usage: PUBLISH_USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        url: { type: 'string' },
        token: { type: 'string' },
        topic: { type: 'string' },
        receipts: { type: 'boolean' },
        final: { type: 'boolean' },
        timeout: { type: 'string' },
      },
      { positionals: true },
    );
    if (values.help) {
      io.out(PUBLISH_USAGE);
      return 0;
    }
    const url = required(values.url, '--url', { name: 'STREAMANCHOR_URL', values: io.env });
    const token = required(values.token, '--token', { name: 'STREAMANCHOR_TOKEN', values: io.env });
    const topic = required(values.topic, '--topic');
    if (!TOPIC_NAME.test(topic)) {
      throw new UsageError(`--topic "${topic}" is not a topic name (${TOPIC_PATTERN})`);
    }
    const timeoutMs = seconds(values.timeout, '--timeout');
    const receiptsWanted: 'none' | 'first' | 'final' = values.final
      ? 'final'
      : values.receipts
        ? 'first'
        : 'none';

    let stopped = false;
    const stop = new AbortController();
    // Every waiting publish listens to it.
    setMaxListeners(0, stop.signal);
    let lines: ReturnType<typeof createInterface> | undefined;
    io.onInterrupt(() => {
      stopped = true;
      lines?.close();
      stop.abort();
    });

    const session = await openSession(url, token);
    let failures = 0;
    try {
      const receipts =
        receiptsWanted === 'none' ? undefined : new ReceiptWaiter(session, receiptsWanted, io);
      const pacer = new Pacer();
      const retryAfter = new Map<string, number>();
      session.onMessage((message) => {
        if (message.type === 'nack' && message.id !== null && message.retryAfterMs !== undefined) {
          retryAfter.set(message.id, message.retryAfterMs);
        }
      });
      const printer = new InOrder<Outcome>((outcome) => {
        const { type, id } = outcome;
        if (type === 'ack') {
          const { recordId, contentHash, acceptedAt } = outcome;
          io.json({ type, id, topic, recordId, contentHash, acceptedAt });
          receipts?.expect(id, outcome.recordId);
          return;
        }
        failures += 1;
        io.json(outcome);
        io.warn(
          type === 'nack'
            ? `record ${id} refused: ${outcome.code} (${outcome.message})`
            : `record ${id} failed: ${outcome.message}`,
        );
      });

      const publishOne = async (id: string, payload: unknown): Promise<Outcome> => {
        for (let attempt = 0; ; attempt += 1) {
          const generation = await pacer.turn(stop.signal);
          try {
            const ack = await session.publish(topic, payload, { id });
            return {
              type: 'ack',
              id,
              recordId: ack.recordId,
              contentHash: ack.contentHash,
              acceptedAt: ack.acceptedAt,
            };
          } catch (error) {
            if (error instanceof NackError) {
              const wait = retryAfter.get(id);
              retryAfter.delete(id);
              if (
                error.code === 'rate_limited' &&
                attempt < RATE_LIMIT_RETRIES &&
                !stopped &&
                session.state === 'open'
              ) {
                pacer.limited(generation, wait);
                continue;
              }
              return { type: 'nack', id, code: error.code, message: error.details ?? '' };
            }
            return { type: 'error', id, message: describeError(error) };
          }
        }
      };

      // Read stdin only now: readline drops the lines it reads before it is iterated.
      if (positionals.length === 0 && io.stdin.isTTY) {
        io.warn('reading records from stdin, one JSON value a line (Ctrl-D ends)');
      }
      if (positionals.length === 0) lines = stdinLines(io);
      const source: Iterable<string> | AsyncIterable<string> = lines
        ? nonBlank(lines)
        : positionals;
      const inFlight = new Set<Promise<void>>();
      let index = 0;
      for await (const text of source) {
        if (stopped) break;
        if (session.state !== 'open') {
          io.warn(`the session closed (${session.closeReason}); records after ${index} not sent`);
          failures += 1;
          break;
        }
        const at = index;
        index += 1;
        const task = publishOne(String(index), parsePayload(text)).then((outcome) =>
          printer.settle(at, outcome),
        );
        inFlight.add(task);
        void task.finally(() => inFlight.delete(task));
        if (inFlight.size >= WINDOW) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      if (index === 0 && !stopped) io.warn('no record to publish');
      if (receipts && !stopped) {
        const missing = await receipts.settle(timeoutMs, stop.signal);
        if (missing.length > 0 && !stopped) {
          failures += 1;
          io.warn(
            `no ${receiptsWanted === 'final' ? 'final ' : ''}receipt for record${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: ${receipts.why()}`,
          );
        }
      }
    } finally {
      await session.close().catch(() => undefined);
      releaseWebRtc();
    }
    if (stopped) return 130;
    return failures > 0 ? 1 : 0;
  },
};

/** Prints each settled outcome once all before it are printed (answers may settle out of order). */
class InOrder<T> {
  #next = 0;
  readonly #settled = new Map<number, T>();
  readonly #emit: (value: T) => void;

  constructor(emit: (value: T) => void) {
    this.#emit = emit;
  }

  settle(index: number, value: T): void {
    this.#settled.set(index, value);
    for (let next = this.#settled.get(this.#next); next !== undefined; ) {
      this.#settled.delete(this.#next);
      this.#next += 1;
      this.#emit(next);
      next = this.#settled.get(this.#next);
    }
  }
}

/**
 * Waits for the receipt of each acked record (`first`: its first `included` or `final` one;
 * `final`: its final one) and prints it as it comes.
 */
class ReceiptWaiter {
  /** recordId → publish id, for the records still waiting. */
  readonly #waiting = new Map<string, string>();
  readonly #session: StreamAnchorSession;
  readonly #want: 'first' | 'final';
  readonly #io: Io;
  #wake: (() => void) | undefined;

  constructor(session: StreamAnchorSession, want: 'first' | 'final', io: Io) {
    this.#session = session;
    this.#want = want;
    this.#io = io;
    session.onReceipt((receipt) => this.#offer(receipt));
    session.onStateChange(() => this.#wake?.());
  }

  expect(id: string, recordId: string): void {
    this.#waiting.set(recordId, id);
    const held = this.#session.receiptFor(recordId);
    if (held) this.#offer(held);
  }

  /** Resolves with the ids of the records still without their receipt when it stops waiting. */
  async settle(timeoutMs: number | undefined, signal: AbortSignal): Promise<string[]> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const onAbort = () => this.#wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (this.#waiting.size > 0 && this.#session.state === 'open' && !signal.aborted) {
        const left = deadline === undefined ? undefined : deadline - Date.now();
        if (left !== undefined && left <= 0) break;
        await new Promise<void>((resolve) => {
          const timer = left === undefined ? undefined : setTimeout(resolve, left);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    return [...this.#waiting.values()].sort((a, b) => Number(a) - Number(b));
  }

  /** Why records are still waiting, once settle returned. */
  why(): string {
    return this.#session.state === 'open'
      ? 'timed out'
      : `the session closed (${this.#session.closeReason})`;
  }

  #offer(receipt: Receipt): void {
    const id = this.#waiting.get(receipt.recordId);
    if (id === undefined) return;
    if (this.#want === 'final' ? receipt.status !== 'final' : receipt.status === 'reorged') return;
    this.#waiting.delete(receipt.recordId);
    this.#io.json({ type: 'receipt', id, receipt });
    if (this.#waiting.size === 0) this.#wake?.();
  }
}

function stdinLines(io: Io): ReturnType<typeof createInterface> {
  return createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
}

async function* nonBlank(lines: AsyncIterable<string>): AsyncIterable<string> {
  for await (const line of lines) if (line.trim() !== '') yield line;
}

/**
 * Spaces publishes once the relay refused one `rate_limited`: from then on one send every
 * `interval` ms, twice the refusal's `retryAfterMs` (the time the quota's bucket takes for
 * one record, at most 1 / its rate), twice longer for each refusal of a send that was spaced
 * by the current interval. Before the first refusal nothing waits. Keeps a bulk publish
 * (`seq 1 100000 | streamanchor publish`) under the quota instead of drawing a refusal per
 * record, which the relay answers by closing the session.
 */
class Pacer {
  #interval = 0;
  #next = 0;
  /** Counts the interval's changes: refusals of sends spaced by an older one say nothing new. */
  #generation = 0;

  /** Resolves when the next send may go (at once while not limited), with its generation. */
  async turn(signal: AbortSignal): Promise<number> {
    const generation = this.#generation;
    const now = Date.now();
    if (this.#interval === 0 && now >= this.#next) return generation;
    const at = Math.max(now, this.#next);
    this.#next = at + this.#interval;
    if (at > now) await sleep(at - now, signal);
    return generation;
  }

  /** A send `turn` let go in `generation` was refused rate_limited (with the relay's retryAfterMs). */
  limited(generation: number, retryAfterMs: number | undefined): void {
    const hint = Math.max(1, retryAfterMs ?? 10);
    this.#next = Math.max(this.#next, Date.now() + hint);
    if (generation !== this.#generation) return;
    // Twice the bucket's refill time, doubling while refusals go on: the relay closes a
    // session past 200 refusals a second, so the pace must fall below the quota at once, not
    // creep toward it (a loaded machine's timers fire late and in bursts).
    this.#interval = Math.min(1000, Math.max(2 * hint, this.#interval * 2));
    this.#generation += 1;
  }
}
