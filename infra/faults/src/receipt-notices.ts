/**
 * One record's receipt as the relay told it: the fields of a v1 `receipt` message the test
 * clients use.
 */
export interface RecordNotice {
  recordId: string;
  status: string;
  revision: number;
  batchId: string;
}

interface BatchSeen {
  /** The highest revision of the batch this session was told of. */
  revision: number;
  /** The session's records of the batch, from its `receipts` messages. */
  records: Set<string>;
}

interface AnchorFields {
  status?: unknown;
  revision?: unknown;
  batchId?: unknown;
}

/** Batches remembered at most (the oldest forgotten first), besides forgetting final ones. */
const DEFAULT_MAX_BATCHES = 4096;

/**
 * Turns one session's receipt messages into one notice per record, for the clients that read
 * the data channel themselves (publisher.ts, bench/peer.ts), so that they count and report
 * per record under protocol v2 what they did under v1 (docs/protocol.md §5.5–5.7):
 * - v1 `receipt`: its one record;
 * - v2 `receipts`: each record it carries, under its anchor (every one, as v1 sent each
 *   record's receipt; duplicates and late revisions included);
 * - v2 `anchoring`: each record of that batch this session got in `receipts` before, when the
 *   anchor is newer than the batch's revision known here (an equal or lower one changes
 *   nothing: revisions order everything); none for a batch it holds nothing of.
 *
 * A batch is forgotten once a `final` notice of it arrives (a final receipt is never revoked:
 * no later notice can matter to these clients), and beyond `maxBatches` the oldest goes
 * first, so memory follows the batches still being anchored, not the whole run.
 */
export class ReceiptNotices {
  readonly #batches = new Map<string, BatchSeen>();

  constructor(readonly maxBatches: number = DEFAULT_MAX_BATCHES) {}

  /** Batches remembered now. */
  get batches(): number {
    return this.#batches.size;
  }

  /** The per-record notices of `data` (one parsed relay message); none for other messages. */
  read(data: Record<string, unknown>): RecordNotice[] {
    switch (data.type) {
      case 'receipt': {
        const receipt = data.receipt as
          | { recordId?: unknown; status?: unknown; revision?: unknown; batchId?: unknown }
          | undefined;
        return [notice(String(receipt?.recordId), receipt ?? {})];
      }
      case 'receipts': {
        const anchor = (data.anchor ?? {}) as AnchorFields;
        const records = Array.isArray(data.records)
          ? (data.records as { recordId?: unknown }[])
          : [];
        const notices = records.map((record) => notice(String(record?.recordId), anchor));
        const batchId = String(anchor.batchId);
        const revision = Number(anchor.revision);
        if (anchor.status === 'final') {
          this.#batches.delete(batchId);
          return notices;
        }
        let batch = this.#batches.get(batchId);
        if (!batch) {
          batch = { revision, records: new Set() };
          this.#batches.set(batchId, batch);
          if (this.#batches.size > this.maxBatches) {
            const oldest = this.#batches.keys().next();
            if (!oldest.done) this.#batches.delete(oldest.value);
          }
        }
        batch.revision = Math.max(batch.revision, revision);
        for (const { recordId } of notices) batch.records.add(recordId);
        return notices;
      }
      case 'anchoring': {
        const anchor = (data.anchor ?? {}) as AnchorFields;
        const batchId = String(anchor.batchId);
        const revision = Number(anchor.revision);
        const batch = this.#batches.get(batchId);
        if (!batch || !(revision > batch.revision)) return [];
        batch.revision = revision;
        if (anchor.status === 'final') this.#batches.delete(batchId);
        return [...batch.records].map((recordId) => notice(recordId, anchor));
      }
      default:
        return [];
    }
  }
}

function notice(recordId: string, anchor: AnchorFields): RecordNotice {
  return {
    recordId,
    status: String(anchor.status),
    revision: Number(anchor.revision),
    batchId: String(anchor.batchId),
  };
}
