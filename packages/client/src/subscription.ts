import {
  canonicalPayload,
  contentHashOf,
  type DeliveredRecord,
  type PositionRanges,
  type ReceiptAnchor,
  type UnsubscribeReason,
} from '@streamanchor/protocol';

/** One record of a subscribed topic (docs/protocol.md §5.9 `records`), with its topic. */
export interface SubscribedRecord {
  topic: string;
  /** The record's number in its topic (1, 2, 3… in ack order); resume after the last one. */
  position: number;
  recordId: `0x${string}`;
  /** The publisher's subject (the token's `sub`). */
  subject: string;
  /** keccak-256 of the canonical payload, as the publisher's ack gave it (see verifyDeliveredRecord). */
  contentHash: `0x${string}`;
  acceptedAt: number;
  /** The canonical payload, parsed. */
  payload: unknown;
}

/** How a subscription ended without error. */
/** A change of a batch's anchoring, for the positions of the subscribed topic it holds. */
export interface SubscribedBatch {
  topic: string;
  anchor: ReceiptAnchor;
  /** Inclusive ranges `[first, last]` of the topic's positions the batch holds, ascending. */
  positions: PositionRanges;
}

export interface SubscriptionEnd {
  /** `requested`: unsubscribed (or replaced by a new subscribe to its topic); else the relay's reason. */
  reason: UnsubscribeReason;
  /** The last position delivered: subscribe again with `{ after }` to resume. */
  after: number;
}

export interface SubscribeOptions {
  /**
   * Deliver the records after this position (0: from the topic's first record). Without it,
   * only records acked from now on.
   */
  after?: number;
  /**
   * Also replay the anchoring changes the relay still keeps (docs/protocol.md §5.9) of
   * batches holding positions after this one (at most `after`; default `after`): a client
   * resuming with records whose batches were not final yet passes the lowest such position
   * minus 1 and learns what happened to them while it was away.
   */
  anchoringAfter?: number;
}

/**
 * Whether a delivered record's `contentHash` is keccak-256 of its payload's canonical form
 * (docs/protocol.md §6). The SDK does not call it on every record: hashing costs about as
 * much as publishing did. A record's full proof is its receipt (GET /v1/records/<id>/receipt).
 */
export function verifyDeliveredRecord(
  record: Pick<DeliveredRecord, 'payload' | 'contentHash'>,
): boolean {
  try {
    return contentHashOf(canonicalPayload(record.payload)) === record.contentHash;
  } catch {
    // No canonical form (a lone surrogate, say): it cannot be the hashed payload.
    return false;
  }
}

type Outcome = { end: SubscriptionEnd } | { error: Error };

/**
 * One topic's subscription in a session (from `session.subscribe`). Records come in position
 * order, each once: one at or below `position` (a resume's duplicate) is dropped.
 *
 * Records that arrive before anyone listens (between the `subscribed` answer and the first
 * `onRecord` or iterator) are kept and handed to the consumers attached in that same task;
 * after that, each record goes to the consumers attached when it arrives.
 */
export class Subscription implements AsyncIterable<SubscribedRecord> {
  readonly topic: string;
  /** Delivery starts after this position (the relay's `after`: the one asked, or the head then). */
  readonly startedAfter: number;
  /** The newest position the relay knew of when the subscription started. */
  readonly head: number;
  /**
   * Resolves when the subscription ends: `{ reason: 'requested' }` after `unsubscribe()` (or
   * a new subscribe to the same topic), the relay's reason when it ended it (e.g.
   * `history_unavailable`: read the records after `after` over HTTP, then subscribe again).
   * Rejects with the session's SessionClosedError when the session closes first: subscribe
   * again in a new session with `{ after: subscription.position }`.
   */
  readonly ended: Promise<SubscriptionEnd>;
  #position: number;
  #outcome: Outcome | undefined;
  #settle!: { resolve(end: SubscriptionEnd): void; reject(error: Error): void };
  readonly #listeners = new Set<(record: SubscribedRecord) => void>();
  readonly #batchListeners = new Set<(batch: SubscribedBatch) => void>();
  readonly #endListeners = new Set<() => void>();
  /** Records that came before the first consumer (undefined once handed over). */
  #backlog: SubscribedRecord[] | undefined = [];
  #flushScheduled = false;
  readonly #unsubscribe: (subscription: Subscription) => Promise<void>;

  /** @internal Use `session.subscribe()`. */
  constructor(
    fields: { topic: string; after: number; head: number },
    unsubscribe: (subscription: Subscription) => Promise<void>,
  ) {
    this.topic = fields.topic;
    this.startedAfter = fields.after;
    this.head = fields.head;
    this.#position = fields.after;
    this.#unsubscribe = unsubscribe;
    this.ended = new Promise<SubscriptionEnd>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // A session closing is no unhandled rejection for those who never awaited `ended`.
    this.ended.catch(() => undefined);
  }

  /** The last position received (`startedAfter` before any): where to resume. */
  get position(): number {
    return this.#position;
  }

  /** Whether the subscription ended (see `ended`). */
  get isEnded(): boolean {
    return this.#outcome !== undefined;
  }

  /** Calls `listener` with each record, in position order. Returns a function that removes it. */
  onRecord(listener: (record: SubscribedRecord) => void): () => void {
    this.#listeners.add(listener);
    // Nothing waiting (the usual case): records go straight to listeners from now on.
    if (this.#backlog?.length === 0) this.#backlog = undefined;
    // Else the backlog is handed over in a microtask, not from inside this call: the listener
    // may refer to what the caller has not finished setting up (its own remover, say).
    if (this.#backlog && !this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flushBacklog());
    }
    return () => this.#listeners.delete(listener);
  }

  /**
   * The records from now on (and the backlog, see the class), buffered until read. Ends after
   * the last record when the subscription ends; throws the session's error (after the
   * buffered records) when the session closed. Leaving the loop (`break`) does not
   * unsubscribe: call `unsubscribe()`.
   */
  [Symbol.asyncIterator](): AsyncIterator<SubscribedRecord> {
    const queue: SubscribedRecord[] = [];
    let wake: (() => void) | undefined;
    let detached = false;
    const offRecord = this.onRecord((record) => {
      queue.push(record);
      wake?.();
    });
    const onEnd = () => wake?.();
    this.#endListeners.add(onEnd);
    // No user code runs for the iterator's own queue: take the backlog now.
    if (this.#backlog) this.#flushBacklog();
    const detach = () => {
      detached = true;
      offRecord();
      this.#endListeners.delete(onEnd);
    };
    return {
      next: async () => {
        while (queue.length === 0 && !detached && this.#outcome === undefined) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
        const value = queue.shift();
        if (value !== undefined) return { value, done: false };
        const outcome = this.#outcome;
        const wasDetached = detached;
        detach();
        if (!wasDetached && outcome && 'error' in outcome) throw outcome.error;
        return { value: undefined, done: true };
      },
      return: async () => {
        detach();
        wake?.();
        return { value: undefined, done: true };
      },
    };
  }

  /**
   * Stops the subscription: resolves once the relay confirmed (no record comes after), and
   * `ended` resolves with reason `requested`. Does nothing when it already ended; resolves too
   * when the session closes meanwhile. Rejects with SubscriptionError when the relay refuses
   * the message (a quota, say).
   */
  unsubscribe(): Promise<void> {
    if (this.#outcome) return Promise.resolve();
    return this.#unsubscribe(this);
  }

  /**
   * Calls `listener` with each change of the anchoring of a batch holding this topic's
   * records (`batch` messages, docs/protocol.md §5.9): its anchor and the positions it
   * holds. Returns a function that removes it. Only changes after it is added; add it right
   * after `subscribe()` resolves to get the changes the relay replays (`anchoringAfter`).
   */
  onBatch(listener: (batch: SubscribedBatch) => void): () => void {
    this.#batchListeners.add(listener);
    return () => this.#batchListeners.delete(listener);
  }

  /** @internal A `batch` message of this topic. */
  deliverBatch(batch: SubscribedBatch): void {
    if (this.#outcome) return;
    for (const listener of [...this.#batchListeners]) {
      try {
        listener(batch);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /** @internal The session's records of this topic, in order. */
  deliver(records: readonly DeliveredRecord[]): void {
    if (this.#outcome) return;
    for (const record of records) {
      // A resume's duplicate (or a record repeated by the relay): already delivered.
      if (record.position <= this.#position) continue;
      this.#position = record.position;
      const delivered: SubscribedRecord = { topic: this.topic, ...record };
      if (this.#backlog) this.#backlog.push(delivered);
      else this.#emit(delivered);
    }
  }

  /** @internal Ends it (once): the relay ended it, it was unsubscribed, or the session closed. */
  finish(outcome: { reason: UnsubscribeReason; after?: number } | { error: Error }): void {
    if (this.#outcome) return;
    // Records before the end reach consumers before they see the end.
    if (this.#backlog && this.#listeners.size > 0) this.#flushBacklog();
    if ('error' in outcome) {
      this.#outcome = outcome;
      this.#settle.reject(outcome.error);
    } else {
      const end = { reason: outcome.reason, after: outcome.after ?? this.#position };
      this.#outcome = { end };
      this.#settle.resolve(end);
    }
    for (const listener of [...this.#endListeners]) listener();
  }

  #flushBacklog(): void {
    const backlog = this.#backlog;
    this.#backlog = undefined;
    this.#flushScheduled = false;
    for (const record of backlog ?? []) this.#emit(record);
  }

  #emit(record: SubscribedRecord): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(record);
      } catch (error) {
        // One failing listener must not cost the others (or the next records) their records.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
