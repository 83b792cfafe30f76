import type { Receipt } from '@streamanchor/protocol';
import { StreamAnchorError } from './errors';

/**
 * What `ReceiptBook.offer` did with a receipt:
 * - `current`: its revision is higher than the one held (or none was held): it is now the
 *   record's current receipt, deliver it;
 * - `duplicate`: the held receipt has the same revision (a receipt sent again);
 * - `stale`: the held receipt has a higher revision (this one arrived late);
 * - `unknown`: the record is not one this book tracks (never acked here, or forgotten).
 */
export type ReceiptOffer = 'current' | 'duplicate' | 'stale' | 'unknown';

/** Default of `maxTrackedRecords`: how many records a session remembers receipts for. */
export const DEFAULT_MAX_TRACKED_RECORDS = 10_000;

interface Waiter {
  resolve(receipt: Receipt): void;
  reject(error: unknown): void;
}

/**
 * The current receipt of each record a session knows, and who waits for its `final` one.
 *
 * Receipts arrive at least once and possibly out of order; of two receipts for a record
 * the higher `revision` is current (docs/protocol.md §9, §11). A record is tracked from its
 * ack on (`track`); receipts for other record ids are ignored, as the protocol says.
 *
 * Memory is bounded by `maxRecords`: tracking one more record beyond it forgets the record
 * that finalized longest ago (a final receipt is never revoked, so only duplicates could
 * still follow), or, when none is final, the oldest acked record; waiters of a forgotten
 * record are rejected.
 */
export class ReceiptBook {
  readonly #maxRecords: number;
  /** Acked records not final yet, in ack order; the value is the current receipt, if any. */
  readonly #open = new Map<string, Receipt | null>();
  /** Records whose current receipt is final, in the order they became final. */
  readonly #final = new Map<string, Receipt>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  #closed: Error | undefined;

  constructor(maxRecords: number = DEFAULT_MAX_TRACKED_RECORDS) {
    if (!Number.isInteger(maxRecords) || maxRecords < 1) {
      throw new StreamAnchorError('maxTrackedRecords must be a positive integer', {
        details: `got ${String(maxRecords)}`,
      });
    }
    this.#maxRecords = maxRecords;
  }

  /** How many records are tracked now (never more than `maxRecords`). */
  get size(): number {
    return this.#open.size + this.#final.size;
  }

  has(recordId: string): boolean {
    return this.#open.has(recordId) || this.#final.has(recordId);
  }

  /** Starts tracking an acked record (no-op when it is tracked already). */
  track(recordId: string): void {
    if (this.has(recordId)) return;
    while (this.size >= this.#maxRecords) this.#forgetOne();
    this.#open.set(recordId, null);
  }

  /** The record's current (highest-revision) receipt; undefined before its first one or when not tracked. */
  current(recordId: string): Receipt | undefined {
    return this.#final.get(recordId) ?? this.#open.get(recordId) ?? undefined;
  }

  /** Keeps `receipt` when it is newer than the held one; see ReceiptOffer. */
  offer(receipt: Receipt): ReceiptOffer {
    const { recordId } = receipt;
    if (!this.has(recordId)) return 'unknown';
    const held = this.current(recordId);
    if (held) {
      if (receipt.revision === held.revision) return 'duplicate';
      if (receipt.revision < held.revision) return 'stale';
    }
    if (receipt.status === 'final') {
      this.#open.delete(recordId);
      this.#final.delete(recordId); // re-insert: the order is the order records became final
      this.#final.set(recordId, receipt);
      const waiters = this.#waiters.get(recordId);
      this.#waiters.delete(recordId);
      for (const waiter of waiters ?? []) waiter.resolve(receipt);
    } else if (this.#final.delete(recordId)) {
      // A newer non-final revision after a final one: a reorg deeper than the finality depth.
      this.#open.set(recordId, receipt);
    } else {
      this.#open.set(recordId, receipt);
    }
    return 'current';
  }

  /**
   * Resolves with the record's `final` receipt (at once when it is held). Rejects with
   * StreamAnchorError when the record is not tracked or is forgotten meanwhile, with the
   * book's close error once it is closed, and with `signal.reason` on abort.
   */
  whenFinal(recordId: string, signal?: AbortSignal): Promise<Receipt> {
    const held = this.#final.get(recordId);
    if (held) return Promise.resolve(held);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!this.#open.has(recordId)) return Promise.reject(notTracked(recordId));
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise<Receipt>((resolve, reject) => {
      const onAbort = () => {
        this.#removeWaiter(recordId, waiter);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve: (receipt) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(receipt);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      let waiters = this.#waiters.get(recordId);
      if (!waiters) {
        waiters = new Set();
        this.#waiters.set(recordId, waiters);
      }
      waiters.add(waiter);
    });
  }

  /** No receipt will come any more: rejects every waiter with `error` (and later ones too). */
  close(error: Error): void {
    this.#closed ??= error;
    const waiters = [...this.#waiters.values()].flatMap((set) => [...set]);
    this.#waiters.clear();
    for (const waiter of waiters) waiter.reject(error);
  }

  #forgetOne(): void {
    const oldestFinal = this.#final.keys().next();
    if (!oldestFinal.done) {
      this.#final.delete(oldestFinal.value);
      return;
    }
    const oldest = this.#open.keys().next();
    if (oldest.done) return;
    this.#open.delete(oldest.value);
    const waiters = this.#waiters.get(oldest.value);
    this.#waiters.delete(oldest.value);
    for (const waiter of waiters ?? []) waiter.reject(forgotten(oldest.value, this.#maxRecords));
  }

  #removeWaiter(recordId: string, waiter: Waiter): void {
    const waiters = this.#waiters.get(recordId);
    waiters?.delete(waiter);
    if (waiters?.size === 0) this.#waiters.delete(recordId);
  }
}

function notTracked(recordId: string): StreamAnchorError {
  return new StreamAnchorError('Not a record this session tracks', {
    details: `${recordId}: only records acked in this session are tracked, up to maxTrackedRecords of them`,
  });
}

function forgotten(recordId: string, max: number): StreamAnchorError {
  return new StreamAnchorError('The session forgot the record before its final receipt', {
    details: `${recordId}: more than maxTrackedRecords (${max}) records were acked since, none of them final`,
  });
}
