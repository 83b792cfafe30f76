/**
 * The session `publish` sends on, handed over to a new one when its relay drains
 * (docs/protocol.md §5.4.1). A draining relay answers every publish it received before its
 * `relay_draining` notice and keeps none it receives after it, so on the notice the session
 * is left at once, and each publish it left unanswered (or nacked `relay_draining`) is sent
 * again on a new session, which the gateway places on another relay: in input order, before
 * any later publish. Nothing acked is sent twice, nothing unacked is lost.
 */
import { NackError, SessionClosedError } from '@streamanchor/client';
import { describeError, isPermanent, nextBackoff } from './session';
import { sleep } from './sleep';

/** What a handover needs of a session (StreamAnchorSession has it). */
export interface HandoverSession {
  readonly state: 'connecting' | 'open' | 'closed';
  readonly draining: boolean;
  readonly closeReason: string | undefined;
  onDraining(listener: () => void): () => void;
  close(): Promise<void>;
}

/** What a handover reports, for the command to print. */
export type HandoverEvent =
  /** The relay said it drains; `reconnecting` false: nothing is left to send, it is only left. */
  | { type: 'draining'; reconnecting: boolean }
  /** A try at opening the new session failed; the next one follows in `waitMs`. */
  | { type: 'retrying'; error: unknown; waitMs: number }
  /** The new session is open; `resending` publishes the relay kept nothing of go out on it again. */
  | { type: 'reconnected'; resending: number }
  /** No new session: `tries` tries failed (1: a refusal that asking again cannot change). */
  | { type: 'failed'; tries: number; error: unknown };

export interface HandoverOptions<S extends HandoverSession> {
  /** Opens a new session through the gateway. */
  open(): Promise<S>;
  /** Called with each session as it becomes the current one, the first one too. */
  onSession(session: S): void;
  report(event: HandoverEvent): void;
  /** Tries at opening the new session before giving up. Default 5: 1 + 2 + 4 + 8 s of waits. */
  tries?: number;
  /** The wait after a failed try, given the previous wait (0 at first). Default nextBackoff. */
  backoff?: (previousMs: number) => number;
  /** Aborting it gives up a handover under way (Ctrl-C). */
  signal: AbortSignal;
}

const DEFAULT_TRIES = 5;

/** No session to send on: the relay drained and no new session could be opened. */
export class HandoverError extends Error {
  override name = 'HandoverError';
}

/** A send waiting for the new session. */
interface Waiter<S> {
  index: number;
  /** It was sent before, on the session left. */
  again: boolean;
  start(session: S): void;
  fail(error: Error): void;
}

/**
 * Whether the relay kept nothing of a publish that failed with `error` on `session` because
 * it drains: nacked `relay_draining` (or `shutting_down` once draining), or unanswered when a
 * session that said it drains closed (the notice came after every answer it owed).
 */
export function keptNothing(session: HandoverSession, error: unknown): boolean {
  if (error instanceof NackError) {
    return error.code === 'relay_draining' || (session.draining && error.code === 'shutting_down');
  }
  return session.draining && error instanceof SessionClosedError;
}

export class SessionHandover<S extends HandoverSession> {
  #current: S;
  /** The handover under way, until the new session is current or it failed. */
  #replacing: Promise<void> | undefined;
  #failure: HandoverError | undefined;
  /** Nothing more will be sent: a drain then only leaves the session. */
  #idle = false;
  readonly #waiting: Waiter<S>[] = [];
  readonly #options: HandoverOptions<S>;

  constructor(first: S, options: HandoverOptions<S>) {
    this.#options = options;
    this.#current = first;
    this.#adopt(first);
  }

  get current(): S {
    return this.#current;
  }

  /**
   * Why nothing more can be sent: no new session after a drain, or the session closed on its
   * own (its unanswered publishes may have been kept: they are not sent again). Undefined
   * while sending goes on, a handover under way included.
   */
  get lost(): string | undefined {
    if (this.#failure) return this.#failure.message;
    const session = this.#current;
    if (this.#replacing || session.draining || session.state !== 'closed') return undefined;
    return `the session closed (${session.closeReason})`;
  }

  /**
   * Runs `send` (one publish) on the current session or, while it is being replaced, on the
   * new one once open, where the sends that waited start in `index` order. A publish the
   * relay kept nothing of because it drains is sent again the same way. Rejects with
   * HandoverError when no new session could be opened, else as `send` does.
   */
  async send<T>(index: number, send: (session: S) => Promise<T>): Promise<T> {
    for (let again = false; ; again = true) {
      const { session, sent } = await this.#start(index, again, send);
      try {
        return await sent;
      } catch (error) {
        if (!keptNothing(session, error)) throw error;
        this.#replace(session);
      }
    }
  }

  /** Every send is done: a drain from now on only leaves the session, none is opened. */
  sendsDone(): void {
    this.#idle = true;
  }

  /** Waits for a handover under way, then closes the current session. */
  async close(): Promise<void> {
    this.#idle = true;
    await this.#replacing;
    await this.#current.close().catch(() => undefined);
  }

  #start<T>(index: number, again: boolean, send: (session: S) => Promise<T>) {
    const begin = (session: S) => ({ session, sent: send(session) });
    if (this.#failure) return Promise.reject(this.#failure);
    if (!this.#replacing) return Promise.resolve(begin(this.#current));
    return new Promise<ReturnType<typeof begin>>((resolve, reject) => {
      this.#waiting.push({
        index,
        again,
        start: (session) => resolve(begin(session)),
        fail: reject,
      });
    });
  }

  #adopt(session: S): void {
    this.#current = session;
    session.onDraining(() => this.#replace(session));
    this.#options.onSession(session);
    if (session.draining) this.#replace(session);
  }

  /** Leaves `from` for a new session, once (every failed send of `from` calls it). */
  #replace(from: S): void {
    if (from !== this.#current || this.#replacing || this.#failure) return;
    this.#replacing = this.#handOver(from);
  }

  async #handOver(from: S): Promise<void> {
    const { report, signal } = this.#options;
    report({ type: 'draining', reconnecting: !this.#idle });
    // Left at once, as subscribe does: its unanswered publishes fail now and wait for the
    // new session, and the relay can stop as soon as its sessions are gone.
    await from.close().catch(() => undefined);
    const tries = this.#options.tries ?? DEFAULT_TRIES;
    const backoff = this.#options.backoff ?? nextBackoff;
    let waitMs = 0;
    for (let tried = 1; ; tried += 1) {
      if (this.#idle) {
        this.#replacing = undefined;
        return;
      }
      if (signal.aborted) return this.#fail(new HandoverError('interrupted'));
      try {
        const next = await this.#options.open();
        return this.#resume(next);
      } catch (error) {
        if (isPermanent(error) || tried >= tries) {
          report({ type: 'failed', tries: tried, error });
          return this.#fail(
            new HandoverError(
              `no session after the relay drained (could not reconnect: ${describeError(error)})`,
            ),
          );
        }
        waitMs = backoff(waitMs);
        report({ type: 'retrying', error, waitMs });
        await sleep(waitMs, signal);
      }
    }
  }

  /** The new session is current: the sends that waited start on it, in index order. */
  #resume(next: S): void {
    const waiting = this.#waiting.splice(0).sort((a, b) => a.index - b.index);
    this.#replacing = undefined;
    this.#adopt(next);
    const resending = waiting.filter(({ again }) => again).length;
    this.#options.report({ type: 'reconnected', resending });
    for (const waiter of waiting) waiter.start(next);
  }

  #fail(failure: HandoverError): void {
    this.#failure = failure;
    this.#replacing = undefined;
    for (const waiter of this.#waiting.splice(0)) waiter.fail(failure);
  }
}
