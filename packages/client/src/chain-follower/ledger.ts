import type { Bytes32 } from '@streamanchor/protocol';
import type { FollowedLeaf, ProblemEvent, ServedRecord } from './types';

interface AnchoredLeaf {
  batchId: Bytes32;
  blockNumber: number;
  leaf: FollowedLeaf;
}

interface Expectation {
  record: ServedRecord;
  /** When it was served (ms, the ledger's clock): its grace runs from here. */
  servedAt: number;
}

/** The fields of `leaf` that differ from `record`'s (topic, subject, contentHash, acceptedAt). */
function differingFields(record: ServedRecord, leaf: FollowedLeaf): string[] {
  return (['topic', 'subject', 'contentHash', 'acceptedAt'] as const)
    .filter((field) => record[field] !== leaf[field])
    .map(
      (field) =>
        `${field} ${JSON.stringify(record[field])} (anchored: ${JSON.stringify(leaf[field])})`,
    );
}

/**
 * §10.1 step 6 as a ledger: the anchored leaves checked so far (by recordId), and the served
 * records still waiting to turn up in one. Pure: the caller passes the time.
 *
 * A served record is settled, with no problem, once a checked batch holds a leaf with its
 * recordId and the same topic, subject, contentHash and acceptedAt. It is reported
 * `served_not_anchored` when that leaf's fields differ, when the batch it names was checked
 * and does not hold it, or when it is still in no checked batch `graceMs` after it was served.
 * A recordId in the leaves of two batches is reported `duplicate_record`.
 */
export class AnchoredRecordLedger {
  readonly #anchored = new Map<string, AnchoredLeaf>();
  readonly #checkedBatches = new Set<string>();
  readonly #pending = new Map<string, Expectation>();
  readonly #maxAnchored: number;

  /** `maxAnchored`: the most anchored leaves kept (the oldest are forgotten first). */
  constructor({ maxAnchored = 1_000_000 }: { maxAnchored?: number } = {}) {
    this.#maxAnchored = maxAnchored;
  }

  /** Served records not settled yet. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Batch ids named by pending served records that no checked batch has (yet). */
  namedBatches(): Bytes32[] {
    const named = new Set<Bytes32>();
    for (const { record } of this.#pending.values()) {
      if (record.batchId && !this.#checkedBatches.has(record.batchId)) named.add(record.batchId);
    }
    return [...named];
  }

  /** Whether a batch's leaves were added. */
  hasBatch(batchId: string): boolean {
    return this.#checkedBatches.has(batchId);
  }

  /**
   * The leaves of a batch whose root was checked; returns the problems this settles: served
   * records it contradicts, and recordIds already anchored in another batch.
   */
  addBatch(batchId: Bytes32, blockNumber: number, leaves: readonly FollowedLeaf[]): ProblemEvent[] {
    const problems: ProblemEvent[] = [];
    if (this.#checkedBatches.has(batchId)) return problems;
    this.#checkedBatches.add(batchId);
    for (const leaf of leaves) {
      const earlier = this.#anchored.get(leaf.recordId);
      if (earlier && earlier.batchId !== batchId) {
        problems.push({
          type: 'problem',
          kind: 'duplicate_record',
          batchId,
          recordId: leaf.recordId,
          blockNumber,
          detail: `the record is anchored twice: in batch ${earlier.batchId} (block ${earlier.blockNumber}) and in this one`,
        });
        continue;
      }
      this.#anchored.set(leaf.recordId, { batchId, blockNumber, leaf });
      if (this.#anchored.size > this.#maxAnchored) {
        this.#anchored.delete(this.#anchored.keys().next().value!);
      }
    }
    for (const [recordId, expectation] of this.#pending) {
      const problem = this.#settle(expectation);
      if (problem === null) continue;
      this.#pending.delete(recordId);
      if (problem !== 'anchored') problems.push(problem);
    }
    return problems;
  }

  /**
   * A served record that must be anchored. Returns its problem when one is known now (its
   * anchored leaf differs, or the checked batch it names does not hold it); otherwise it is
   * settled now or kept pending (a record served twice is kept once).
   */
  expect(record: ServedRecord, now: number): ProblemEvent | undefined {
    const expectation = this.#pending.get(record.recordId) ?? { record, servedAt: now };
    if (record.batchId && !expectation.record.batchId) expectation.record = record;
    const problem = this.#settle(expectation);
    if (problem === null) {
      this.#pending.set(record.recordId, expectation);
      return undefined;
    }
    this.#pending.delete(record.recordId);
    return problem === 'anchored' ? undefined : problem;
  }

  /** Pending served records past their grace, reported and dropped. */
  expired(now: number, graceMs: number): ProblemEvent[] {
    const problems: ProblemEvent[] = [];
    for (const [recordId, { record, servedAt }] of this.#pending) {
      if (now - servedAt < graceMs) continue;
      this.#pending.delete(recordId);
      problems.push(
        notAnchored(
          record,
          `served ${Math.round((now - servedAt) / 1000)} s ago (topic ${record.topic}), it is in no anchored batch${record.batchId ? ` (it names batch ${record.batchId}, not anchored or not served)` : ''}`,
        ),
      );
    }
    return problems;
  }

  /** 'anchored', a problem, or null (nothing known yet). */
  #settle({ record }: Expectation): ProblemEvent | 'anchored' | null {
    const anchored = this.#anchored.get(record.recordId);
    if (anchored) {
      const differs = differingFields(record, anchored.leaf);
      if (differs.length > 0) {
        return notAnchored(
          record,
          `its anchored leaf (batch ${anchored.batchId}) has other fields: ${differs.join(', ')}`,
        );
      }
      if (record.batchId && record.batchId !== anchored.batchId) {
        return notAnchored(
          record,
          `it names batch ${record.batchId}, but batch ${anchored.batchId} holds it`,
        );
      }
      return 'anchored';
    }
    if (record.batchId && this.#checkedBatches.has(record.batchId)) {
      return notAnchored(record, `the batch it names, ${record.batchId}, does not hold it`);
    }
    return null;
  }
}

function notAnchored(record: ServedRecord, detail: string): ProblemEvent {
  return {
    type: 'problem',
    kind: 'served_not_anchored',
    ...(record.batchId ? { batchId: record.batchId } : {}),
    recordId: record.recordId,
    detail,
  };
}
