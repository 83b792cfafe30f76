import { type Receipt, type ReceiptAnchor, receiptOf, splitReceipt } from '@streamanchor/protocol';
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
 * record are rejected. The batch index (batch id → records whose current receipt is of that
 * batch, for protocol v2's `anchoring` messages) holds only tracked records, so it is bounded
 * by `maxRecords` too.
 */
export class ReceiptBook {
  readonly #maxRecords: number;
  /** Acked records not final yet, in ack order; the value is the current receipt, if any. */
  readonly #open = new Map<string, Receipt | null>();
  /** Records whose current receipt is final, in the order they became final. */
  readonly #final = new Map<string, Receipt>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  /** Batch id → the tracked records whose current receipt is of that batch (never empty). */
  readonly #byBatch = new Map<string, Set<string>>();
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

  /** How many batches the current receipts are of (never more than `size`). */
  get batchCount(): number {
    return this.#byBatch.size;
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
    if (held?.batchId !== receipt.batchId) {
      // A record stays in its batch (a reorg re-anchors the same batch); moved all the same.
      if (held) this.#unindex(recordId, held.batchId);
      let records = this.#byBatch.get(receipt.batchId);
      if (!records) {
        records = new Set();
        this.#byBatch.set(receipt.batchId, records);
      }
      records.add(recordId);
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

  /** The current receipts of the tracked records of batch `batchId`. */
  receiptsOfBatch(batchId: string): Receipt[] {
    const records = this.#byBatch.get(batchId);
    if (!records) return [];
    const receipts: Receipt[] = [];
    for (const recordId of records) {
      const receipt = this.current(recordId);
      if (receipt) receipts.push(receipt);
    }
    return receipts;
  }

  /**
   * Applies a change of a batch's anchoring (protocol v2's `anchoring` message) to the
   * records of that batch this book holds a receipt for: each one whose current receipt has
   * a lower revision than `anchor` gets `receiptOf(anchor, <its record half>)` (a record's
   * leaf fields and proof never change within its batch). Returns the receipts that became
   * current, to deliver; none when the book holds no record of the batch.
   */
  applyAnchor(anchor: ReceiptAnchor): Receipt[] {
    const applied: Receipt[] = [];
    for (const held of this.receiptsOfBatch(anchor.batchId)) {
      if (held.revision >= anchor.revision) continue;
      const receipt = receiptOf(anchor, splitReceipt(held).record);
      if (this.offer(receipt) === 'current') applied.push(receipt);
    }
    return applied;
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
    const oldestFinal = this.#final.entries().next();
    if (!oldestFinal.done) {
      const [recordId, receipt] = oldestFinal.value;
      this.#final.delete(recordId);
      this.#unindex(recordId, receipt.batchId);
      return;
    }
    const oldest = this.#open.entries().next();
    if (oldest.done) return;
    const [recordId, receipt] = oldest.value;
    this.#open.delete(recordId);
    if (receipt) this.#unindex(recordId, receipt.batchId);
    const waiters = this.#waiters.get(recordId);
    this.#waiters.delete(recordId);
    for (const waiter of waiters ?? []) waiter.reject(forgotten(recordId, this.#maxRecords));
  }

  #unindex(recordId: string, batchId: string): void {
    const records = this.#byBatch.get(batchId);
    records?.delete(recordId);
    if (records?.size === 0) this.#byBatch.delete(batchId);
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
