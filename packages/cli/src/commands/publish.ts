/**
 * `streamanchor publish`: publishes records over one session (the SDK's `connect` and
 * `publish`) and prints each answer as a JSON line, in input order; with `--receipts` or
 * `--final`, then each acked record's receipt. When the relay drains, it goes on over a new
 * session (session-handover.ts).
 */
import { setMaxListeners } from 'node:events';
import { createInterface } from 'node:readline';
import {
  fetchReceipt,
  NackError,
  type Receipt,
  type SessionRequestError,
  type StreamAnchorSession,
} from '@streamanchor/client';
import { TOPIC_PATTERN } from '@streamanchor/protocol';
import { parseCommandArgs, required, seconds, UsageError } from '../args';
import type { Command, Io } from '../command';
import { parsePayload } from '../payload';
import { connectSession, describeError, isPermanent, openSession } from '../session';
import { type HandoverEvent, SessionHandover } from '../session-handover';
import { sleep } from '../sleep';
import { releaseWebRtc } from '../webrtc';

export const PUBLISH_USAGE = `usage: streamanchor publish --url <gateway> --token <token> --topic <topic> [--receipts | --final] [--timeout <seconds>] [json ...]

Publishes each argument as one record: its JSON value, or, when it is not JSON, the
argument as a JSON string. With no argument, each non-blank line of stdin is one record.
Prints one JSON line per record, in input order (id: its 1-based number in the input):
  {"type":"ack","id","topic","recordId","contentHash","acceptedAt"}
  {"type":"nack","id","code","message"}   (nothing of it was kept)
Past the relay's publish quota (a rate_limited nack) it slows to the quota's pace and
retries the refused records. When the relay drains (a relay_draining notice: it is being
stopped), it reconnects through the gateway at once and sends the records not acked yet
again, in order, on the new session (up to 5 tries over about 15 s, then exit code 1);
records acked before are not sent again, and their receipts come over HTTP.
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
/** Receipts of records whose session drained are asked for over HTTP in rounds this far apart… */
const RECEIPT_POLL_MS = 2000;
/** …this many at a time. */
const RECEIPT_FETCHES = 8;
const TOPIC_NAME = new RegExp(TOPIC_PATTERN);

type Outcome =
  | {
      type: 'ack';
      id: string;
      recordId: `0x${string}`;
      contentHash: `0x${string}`;
      acceptedAt: number;
      /** The session that acked it (not printed): its receipts come there. */
      session: StreamAnchorSession;
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

    const first = await openSession(url, token);
    const receipts =
      receiptsWanted === 'none'
        ? undefined
        : new ReceiptWaiter(receiptsWanted, io, (recordId, signal) =>
            fetchReceipt({ baseUrl: url, token, recordId, signal }),
          );
    const retryAfter = new Map<string, number>();
    const handover = new SessionHandover(first, {
      open: () => connectSession(url, token),
      onSession: (session) => {
        receipts?.attach(session);
        keepRetryAfter(session, retryAfter);
      },
      report: (event) => io.warn(handoverLine(event)),
      signal: stop.signal,
    });
    let failures = 0;
    try {
      const pacer = new Pacer();
      const printer = new InOrder<Outcome>((outcome) => {
        const { type, id } = outcome;
        if (type === 'ack') {
          const { recordId, contentHash, acceptedAt } = outcome;
          io.json({ type, id, topic, recordId, contentHash, acceptedAt });
          receipts?.expect(id, recordId, outcome.session);
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

      // `index` orders the records a drain makes send again; `id` stays theirs.
      const publishOne = async (index: number, id: string, payload: unknown): Promise<Outcome> => {
        for (let attempt = 0; ; attempt += 1) {
          const generation = await pacer.turn(stop.signal);
          try {
            const { session, ack } = await handover.send(index, async (session) => ({
              session,
              ack: await session.publish(topic, payload, { id }),
            }));
            return {
              type: 'ack',
              id,
              recordId: ack.recordId,
              contentHash: ack.contentHash,
              acceptedAt: ack.acceptedAt,
              session,
            };
          } catch (error) {
            if (error instanceof NackError) {
              const wait = retryAfter.get(id);
              retryAfter.delete(id);
              if (
                error.code === 'rate_limited' &&
                attempt < RATE_LIMIT_RETRIES &&
                !stopped &&
                handover.lost === undefined
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
        const lost = handover.lost;
        if (lost !== undefined) {
          io.warn(`${lost}; records after ${index} not sent`);
          failures += 1;
          break;
        }
        const at = index;
        index += 1;
        const task = publishOne(at, String(index), parsePayload(text)).then((outcome) =>
          printer.settle(at, outcome),
        );
        inFlight.add(task);
        void task.finally(() => inFlight.delete(task));
        if (inFlight.size >= WINDOW) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      handover.sendsDone();
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
      await handover.close();
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
 * `final`: its final one) and prints it as it comes: over the session that acked the record
 * while it is open, over HTTP (docs/protocol.md §3.7) once that session's relay drained
 * (a relay sends receipts only to the session that published the records).
 */
class ReceiptWaiter {
  /** recordId → its publish id and the session that acked it, for the records still waiting. */
  readonly #waiting = new Map<string, { id: string; session: StreamAnchorSession }>();
  readonly #want: 'first' | 'final';
  readonly #io: Io;
  readonly #fetch: (recordId: string, signal: AbortSignal) => Promise<Receipt>;
  #wake: (() => void) | undefined;
  /** Why records are still waiting, when it is not the timeout. */
  #why: string | undefined;

  constructor(
    want: 'first' | 'final',
    io: Io,
    fetch: (recordId: string, signal: AbortSignal) => Promise<Receipt>,
  ) {
    this.#want = want;
    this.#io = io;
    this.#fetch = fetch;
  }

  /** Listens to a session's receipts (each session the command opens). */
  attach(session: StreamAnchorSession): void {
    session.onReceipt((receipt) => this.#offer(receipt));
    session.onStateChange(() => this.#wake?.());
  }

  expect(id: string, recordId: string, session: StreamAnchorSession): void {
    this.#waiting.set(recordId, { id, session });
    const held = session.receiptFor(recordId);
    if (held) this.#offer(held);
  }

  /** Resolves with the ids of the records still without their receipt when it stops waiting. */
  async settle(timeoutMs: number | undefined, signal: AbortSignal): Promise<string[]> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const onAbort = () => this.#wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (this.#waiting.size > 0 && !signal.aborted) {
        const closed = this.#closedSession();
        if (closed) {
          this.#why = `the session closed (${closed.closeReason})`;
          break;
        }
        const drained = this.#drainedRecords();
        if (drained.length > 0) {
          this.#why = await this.#fetchReceipts(drained, signal);
          if (this.#why !== undefined || this.#waiting.size === 0) break;
        }
        const left = deadline === undefined ? undefined : deadline - Date.now();
        if (left !== undefined && left <= 0) break;
        const pause =
          drained.length > 0 ? Math.min(left ?? RECEIPT_POLL_MS, RECEIPT_POLL_MS) : left;
        await this.#pause(pause);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    return [...this.#waiting.values()].map(({ id }) => id).sort((a, b) => Number(a) - Number(b));
  }

  /** Why records are still waiting, once settle returned. */
  why(): string {
    return this.#why ?? 'timed out';
  }

  /** A session holding waiting records that closed without draining: they cannot come now. */
  #closedSession(): StreamAnchorSession | undefined {
    for (const { session } of this.#waiting.values()) {
      if (session.state === 'closed' && !session.draining) return session;
    }
    return undefined;
  }

  /** The waiting records whose session drained: their relay no longer sends their receipts. */
  #drainedRecords(): string[] {
    return [...this.#waiting].filter(([, { session }]) => session.draining).map(([id]) => id);
  }

  /**
   * Asks the gateway for these records' receipts, in ack order, a few at a time, until some
   * are not ready (not anchored, or not final, yet): records are batched in about the order
   * they were acked, so the later ones are not either. Resolves with why to stop waiting (a
   * refusal that asking again cannot change), else undefined.
   */
  async #fetchReceipts(recordIds: string[], signal: AbortSignal): Promise<string | undefined> {
    for (let at = 0; at < recordIds.length && !signal.aborted; at += RECEIPT_FETCHES) {
      const chunk = recordIds.slice(at, at + RECEIPT_FETCHES);
      const answers = await Promise.all(chunk.map((recordId) => this.#fetchOne(recordId, signal)));
      const refused = answers.find((answer) => typeof answer === 'string');
      if (refused !== undefined) return refused;
      if (answers.includes(false)) return undefined;
    }
    return undefined;
  }

  /** One record's receipt over HTTP: true once printed, false when not ready, else a refusal. */
  async #fetchOne(recordId: string, signal: AbortSignal): Promise<boolean | string> {
    try {
      this.#offer(await this.#fetch(recordId, signal));
      return !this.#waiting.has(recordId);
    } catch (error) {
      // 404 (receipt_pending: not anchored yet; record_not_found: acked, not stored yet), 503,
      // the network: not ready, asked again at the next round.
      if (isPermanent(error) && (error as SessionRequestError).status !== 404) {
        return `the gateway refused to serve receipts (${describeError(error)})`;
      }
      return false;
    }
  }

  /** Resolves after `ms` (undefined: no limit), or sooner on a receipt, a session's change, abort. */
  async #pause(ms: number | undefined): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }

  #offer(receipt: Receipt): void {
    const waiting = this.#waiting.get(receipt.recordId);
    if (waiting === undefined) return;
    if (this.#want === 'final' ? receipt.status !== 'final' : receipt.status === 'reorged') return;
    this.#waiting.delete(receipt.recordId);
    this.#io.json({ type: 'receipt', id: waiting.id, receipt });
    if (this.#waiting.size === 0) this.#wake?.();
  }
}

/** The stderr line of a handover event (session-handover.ts). */
function handoverLine(event: HandoverEvent): string {
  switch (event.type) {
    case 'draining':
      return event.reconnecting
        ? 'the relay is draining (relay_draining); reconnecting through the gateway'
        : 'the relay is draining (relay_draining); leaving it (nothing left to send)';
    case 'retrying':
      return `could not open a new session (${describeError(event.error)}); again in ${event.waitMs / 1000} s`;
    case 'reconnected':
      return event.resending === 0
        ? 'reconnected on a new session (the draining relay had answered every record sent)'
        : `reconnected on a new session; resending the ${event.resending} record${event.resending === 1 ? '' : 's'} the draining relay did not take`;
    case 'failed':
      return `could not reconnect after the relay drained: ${event.tries === 1 ? '' : `${event.tries} tries failed, the last: `}${describeError(event.error)}`;
  }
}

/** Keeps the retryAfterMs of the session's nacks, by publish id (the pacer's hint). */
function keepRetryAfter(session: StreamAnchorSession, retryAfter: Map<string, number>): void {
  session.onMessage((message) => {
    if (message.type === 'nack' && message.id !== null && message.retryAfterMs !== undefined) {
      retryAfter.set(message.id, message.retryAfterMs);
    }
  });
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
