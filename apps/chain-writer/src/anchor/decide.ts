import type { Hex } from 'viem';

/**
 * What to do next for one open batch, decided from where the chain stands (never from the
 * batch's status alone). PURE: no I/O, no clock (time comes in `memory.now`), so every
 * branch is unit-tested without anvil (decide.test.ts).
 *
 * | batch                        | chain view                                   | action                                   |
 * | ---------------------------- | -------------------------------------------- | ---------------------------------------- |
 * | built, backed off            | –                                            | wait `backed-off`                        |
 * | built                        | anchored                                     | recordAnchoredElsewhere `found-anchored` |
 * | built                        | not anchored, no gas read yet                | estimate                                 |
 * | built                        | gas reverts BatchAlreadyAnchored             | recordAnchoredElsewhere `estimate-…`     |
 * | built                        | gas fails otherwise                          | fail (back off)                          |
 * | built                        | gas ok                                       | sign `new` at the next nonce             |
 * | sent/included, no tx of ours | anchored                                     | wait `anchored-elsewhere`                |
 * | sent, no tx of ours          | not anchored (its outside anchoring left)    | returnToBuilt                            |
 * | included, no tx of ours      | not anchored                                 | wait `awaiting-indexer`                  |
 * | tx                           | receipt success                              | wait `anchored`                          |
 * | tx                           | receipt reverted, anchored                   | wait `anchored-elsewhere`                |
 * | tx                           | receipt reverted, not anchored               | re-sign `reverted` at the next nonce     |
 * | tx                           | no receipt, nonce used, anchored             | wait `anchored-elsewhere`                |
 * | tx                           | no receipt, nonce used, not anchored         | re-sign `nonce-taken` at the next nonce  |
 * | tx                           | nonce free, not in the pool (dropped, reorged out, never broadcast) | broadcast the stored bytes |
 * | tx                           | nonce free, not in pool, node refused it, anchored | fill the nonce (self-transfer)     |
 * | tx                           | nonce free, not in pool, node refused it     | re-sign `rejected` at the same nonce     |
 * | tx                           | in the pool, anchored                        | wait `pending-anchored` (reverts harmlessly) |
 * | tx                           | in the pool longer than confirmTimeoutMs     | re-sign `fee-bump` at the same nonce     |
 * | tx                           | in the pool                                  | wait `pending`                           |
 *
 * "re-sign" goes through the gas estimate (estimate → BatchAlreadyAnchored: wait
 * `anchored-elsewhere`; other failure: fail) and is only done for `sent` batches: an
 * `included` batch changes its tx only after the indexer put it back to `sent` (the ledger
 * writes the `reorged` receipt notice then), so meanwhile it waits `awaiting-indexer`.
 * Re-signs after a failure (`reverted`, `nonce-taken`, `rejected`) respect the backoff.
 * Keeping a free nonce broadcast — even for a batch anchored elsewhere, whose tx then
 * reverts harmlessly — is what keeps later nonces from waiting behind a gap; nonces that no
 * batch holds are found by `findNonceGaps`.
 */
export function decide(
  batch: OpenBatch,
  view: BatchView,
  memory: BatchMemory,
  options: DecideOptions,
): Action {
  if (batch.status === 'built') return decideBuilt(view, memory);
  const tx = batch.tx;
  if (!tx) {
    if (view.anchored) return wait('anchored-elsewhere');
    return batch.status === 'sent' ? { kind: 'returnToBuilt' } : wait('awaiting-indexer');
  }
  const standing = view.tx ?? { kind: 'absent' };
  if (standing.kind === 'mined') {
    if (standing.success) return wait('anchored');
    if (view.anchored) return wait('anchored-elsewhere');
    return resign(batch, tx, view, memory, { reason: 'reverted', nonce: 'next', failure: true });
  }
  if (view.minedNonce > tx.nonce) {
    if (view.anchored) return wait('anchored-elsewhere');
    return resign(batch, tx, view, memory, { reason: 'nonce-taken', nonce: 'next', failure: true });
  }
  // Our nonce is still free.
  if (standing.kind === 'absent') {
    if (!memory.rejected) return { kind: 'broadcast', reason: 'not-in-pool' };
    if (view.anchored)
      return { kind: 'fill', nonce: tx.nonce, reason: 'refused-tx-of-anchored-batch' };
    return resign(batch, tx, view, memory, { reason: 'rejected', nonce: tx.nonce, failure: true });
  }
  if (view.anchored) return wait('pending-anchored');
  const since = memory.pendingSince;
  if (since !== undefined && memory.now - since > options.confirmTimeoutMs) {
    return resign(batch, tx, view, memory, { reason: 'fee-bump', nonce: tx.nonce, failure: false });
  }
  return wait('pending');
}

function decideBuilt(view: BatchView, memory: BatchMemory): Action {
  if (backedOff(memory)) return wait('backed-off');
  if (view.anchored) return { kind: 'recordAnchoredElsewhere', reason: 'found-anchored' };
  const gas = view.gas;
  if (!gas) return { kind: 'estimate' };
  if (gas.kind === 'reverted' && gas.errorName === ALREADY_ANCHORED) {
    return { kind: 'recordAnchoredElsewhere', reason: 'estimate-already-anchored' };
  }
  if (gas.kind !== 'ok') return { kind: 'fail', reason: gasFailure(gas) };
  return { kind: 'sign', reason: 'new', nonce: 'next', gas: gas.gas, failure: false };
}

function resign(
  batch: OpenBatch,
  tx: StoredTx,
  view: BatchView,
  memory: BatchMemory,
  how: { reason: ResignReason; nonce: 'next' | number; failure: boolean },
): Action {
  if (batch.status !== 'sent') return wait('awaiting-indexer');
  if (how.failure && backedOff(memory)) return wait('backed-off');
  const gas = view.gas;
  if (!gas) return { kind: 'estimate' };
  if (gas.kind === 'reverted' && gas.errorName === ALREADY_ANCHORED) {
    return wait('anchored-elsewhere');
  }
  if (gas.kind !== 'ok') return { kind: 'fail', reason: gasFailure(gas) };
  return {
    kind: 'sign',
    reason: how.reason,
    nonce: how.nonce,
    gas: gas.gas,
    replaces: tx,
    failure: how.failure,
  };
}

/**
 * Nonces that block later txs of ours and that no batch of ours holds: every nonce from the
 * signer's mined count up to the highest nonce an open batch waits on, minus those a batch
 * row (any status) holds and those the node's pool already fills (below its contiguous
 * `pending` count). Such a hole appears when a reorg drops a tx whose batch has since moved
 * to another nonce, or a tx someone else signed with our key. Filled with 0-value
 * self-transfers (`fill` in the submitter): a filler anchors nothing, so it can never anchor
 * a batch twice, and it needs no row (a crash just lets the next tick find the hole again).
 */
export function findNonceGaps(input: {
  minedNonce: number;
  pendingNonce: number;
  /** Nonces held by any batch row of this signer (any status). */
  held: ReadonlySet<number>;
  /** Nonces of the txs open batches wait on. */
  waiting: Iterable<number>;
  /** At most this many gaps (default 64). */
  limit?: number;
}): number[] {
  let top = -1;
  for (const nonce of input.waiting) if (nonce > top) top = nonce;
  const gaps: number[] = [];
  const from = Math.max(input.minedNonce, input.pendingNonce);
  const limit = input.limit ?? 64;
  for (let nonce = from; nonce < top && gaps.length < limit; nonce++) {
    if (!input.held.has(nonce)) gaps.push(nonce);
  }
  return gaps;
}

/**
 * Which gaps to fill now: a gap is (re)filled unless a filler for it went out within
 * `confirmTimeoutMs`; every new attempt raises the filler's fees (attempt counts).
 */
export function decideFills(
  gaps: readonly number[],
  fillers: ReadonlyMap<number, { attempts: number; lastAt: number }>,
  now: number,
  options: DecideOptions,
): { nonce: number; attempt: number }[] {
  const fills: { nonce: number; attempt: number }[] = [];
  for (const nonce of gaps) {
    const last = fillers.get(nonce);
    if (last && now - last.lastAt <= options.confirmTimeoutMs) continue;
    fills.push({ nonce, attempt: last?.attempts ?? 0 });
  }
  return fills;
}

export const ALREADY_ANCHORED = 'BatchAlreadyAnchored';

export type OpenStatus = 'built' | 'sent' | 'included';

/** Our signed tx for a batch, as stored (txHash = keccak256(rawTx)). */
export interface StoredTx {
  nonce: number;
  rawTx: Hex;
  txHash: Hex;
}

/** A batch not final yet, as the ledger holds it. */
export interface OpenBatch {
  batchId: Hex;
  status: OpenStatus;
  merkleRoot: Hex;
  recordCount: number;
  /** Absent for `built` and for batches found anchored before we signed anything. */
  tx?: StoredTx;
}

/** Where our stored tx stands on the node. */
export type TxStanding =
  /** A receipt in the node's canonical chain. */
  | { kind: 'mined'; success: boolean; blockNumber: bigint }
  /** Known to the node, not mined. */
  | { kind: 'pooled' }
  /** Unknown to the node: never broadcast, dropped from the pool, or reorged out. */
  | { kind: 'absent' };

export type GasEstimate =
  | { kind: 'ok'; gas: bigint }
  | { kind: 'reverted'; errorName: string }
  | { kind: 'failed'; reason: string };

/** The chain as one batch sees it, read at one block (`head`). */
export interface BatchView {
  head: bigint;
  /** `isAnchored(batchId)` at `head`. */
  anchored: boolean;
  /** The signer's mined tx count at `head` (the next nonce the chain expects). */
  minedNonce: number;
  /** Where the batch's stored tx stands (when it has one). */
  tx?: TxStanding;
  /** The anchorBatch gas estimate: read only when `decide` asked for it (`estimate`). */
  gas?: GasEstimate;
}

/** What this process remembers about the batch (in memory, lost on restart by design). */
export interface BatchMemory {
  now: number;
  /** Since when this process knows the current tx to be out (signed, broadcast or seen pooled). */
  pendingSince?: number;
  /** The node refused the current tx the last time this process broadcast it. */
  rejected?: boolean;
  /** After a failure: no new signature before this time. */
  retryAt?: number;
}

export interface DecideOptions {
  /** A tx pooled this long (since this process knew it) is replaced with bumped fees. */
  confirmTimeoutMs: number;
}

export type WaitReason =
  /** Our tx is mined and succeeded. */
  | 'anchored'
  /** The chain holds the batch anchored by a tx that is not our current one. */
  | 'anchored-elsewhere'
  /** Our tx is in the pool. */
  | 'pending'
  /** Our tx is in the pool but the batch is anchored already: it will revert harmlessly. */
  | 'pending-anchored'
  | 'backed-off'
  /** An `included` batch whose anchoring left the chain needs a new tx: after the indexer reverts it. */
  | 'awaiting-indexer';

export type ResignReason = 'reverted' | 'nonce-taken' | 'rejected' | 'fee-bump';

export type Action =
  | { kind: 'wait'; reason: WaitReason }
  | { kind: 'recordAnchoredElsewhere'; reason: 'found-anchored' | 'estimate-already-anchored' }
  | { kind: 'returnToBuilt' }
  /** Read the anchorBatch gas estimate, then decide again. */
  | { kind: 'estimate' }
  | {
      kind: 'sign';
      reason: 'new' | ResignReason;
      /** `next`: past every nonce in use; a number: that nonce (a replacement, fees bumped). */
      nonce: 'next' | number;
      gas: bigint;
      /** The stored tx the new one replaces (compare-and-set in the ledger). */
      replaces?: StoredTx;
      /** Counts as a failure: backs off the next attempt. */
      failure: boolean;
    }
  /** Broadcast the stored bytes again. */
  | { kind: 'broadcast'; reason: 'not-in-pool' }
  /** Use up `nonce` with a 0-value self-transfer. */
  | { kind: 'fill'; nonce: number; reason: 'refused-tx-of-anchored-batch' }
  /** Could not go on (gas estimate failed): back off. */
  | { kind: 'fail'; reason: string };

function wait(reason: WaitReason): Action {
  return { kind: 'wait', reason };
}

function backedOff(memory: BatchMemory): boolean {
  return memory.retryAt !== undefined && memory.now < memory.retryAt;
}

function gasFailure(gas: GasEstimate): string {
  if (gas.kind === 'reverted') return `gas estimate reverted: ${gas.errorName}`;
  if (gas.kind === 'failed') return `gas estimate failed: ${gas.reason}`;
  return 'gas estimate ok';
}
