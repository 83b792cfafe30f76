import type { Hex } from 'viem';
import type { BatchMemory, OpenBatch } from './decide';

/** First retry delay after a failed step; doubles per failure up to the max. */
const FAILURE_BACKOFF_MS = 5_000;
const FAILURE_BACKOFF_MAX_MS = 5 * 60_000;

/**
 * What the submitter remembers between ticks, in this process only (a restart forgets it
 * on purpose: everything that matters is in the ledger or on the chain).
 */
export type SubmitterMemory = {
  /** Batches seen anchored → when; not re-read until a reorg is noticed or they are old. */
  readonly confirmed: Map<string, number>;
  /** Gap fillers sent, by nonce. */
  readonly fillers: Map<number, { attempts: number; lastAt: number }>;
  /** The batch's memory as `decide` takes it. */
  of(batch: OpenBatch, now: number): BatchMemory;
  /** Counts a failure and backs the batch off; returns the failure count. */
  noteFailure(batchId: string): number;
  clearFailures(batchId: string): void;
  /** `txHash` is out (signed, broadcast or seen pooled): its confirm timeout runs from the first time. */
  out(batchId: string, txHash: Hex): void;
  /** Since when `txHash` is known out, if it is the batch's current one. */
  outSince(batchId: string): number | undefined;
  /** The node refused `txHash` (undefined: it did not). */
  refused(batchId: string, txHash: Hex | undefined): void;
  /** Forgets batches not open any more. */
  prune(open: ReadonlySet<string>): void;
  /** True the first time for `key`. */
  firstTime(key: string): boolean;
};

export function createSubmitterMemory(): SubmitterMemory {
  const confirmed = new Map<string, number>();
  const fillers = new Map<number, { attempts: number; lastAt: number }>();
  const out = new Map<string, { txHash: Hex; since: number }>();
  const refused = new Map<string, Hex>();
  const failures = new Map<string, { count: number; retryAt: number }>();
  const told = new Set<string>();
  return {
    confirmed,
    fillers,
    of(batch, now) {
      const memory: BatchMemory = { now };
      const failure = failures.get(batch.batchId);
      if (failure) memory.retryAt = failure.retryAt;
      const tx = batch.tx;
      if (tx) {
        const known = out.get(batch.batchId);
        if (known?.txHash === tx.txHash) memory.pendingSince = known.since;
        if (refused.get(batch.batchId) === tx.txHash) memory.rejected = true;
      }
      return memory;
    },
    noteFailure(batchId) {
      const count = (failures.get(batchId)?.count ?? 0) + 1;
      const delay = Math.min(FAILURE_BACKOFF_MS * 2 ** (count - 1), FAILURE_BACKOFF_MAX_MS);
      failures.set(batchId, { count, retryAt: Date.now() + delay });
      return count;
    },
    clearFailures(batchId) {
      failures.delete(batchId);
    },
    out(batchId, txHash) {
      if (out.get(batchId)?.txHash !== txHash) out.set(batchId, { txHash, since: Date.now() });
    },
    outSince(batchId) {
      return out.get(batchId)?.since;
    },
    refused(batchId, txHash) {
      if (txHash) refused.set(batchId, txHash);
      else refused.delete(batchId);
    },
    prune(open) {
      for (const map of [confirmed, out, refused, failures]) {
        for (const id of map.keys()) if (!open.has(id)) map.delete(id);
      }
    },
    firstTime(key) {
      if (told.has(key)) return false;
      told.add(key);
      return true;
    },
  };
}
