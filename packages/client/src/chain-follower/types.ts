import type { Bytes32 } from '@streamanchor/protocol';

/** One `BatchAnchored(batchId, merkleRoot, recordCount, writer)` log, as read from the chain (§8). */
export interface AnchoredBatchLog {
  batchId: Bytes32;
  merkleRoot: Bytes32;
  recordCount: number;
  writer: string;
  /** The contract that emitted it (lowercase). */
  contract: string;
  blockNumber: number;
  blockHash: Bytes32;
  txHash: Bytes32;
  logIndex: number;
}

/** One leaf of a batch the follower checked (docs/protocol.md §3.10 `leaves[]`). */
export interface FollowedLeaf {
  leafIndex: number;
  recordId: Bytes32;
  topic: string;
  subject: string;
  contentHash: Bytes32;
  acceptedAt: number;
  leafHash: Bytes32;
  /** Its position in its topic (null when it has none). */
  position: number | null;
  /** The canonical payload text, when served (null: not served to this token, or pruned). */
  payload: string | null;
  /** Whether `payload` hashes to `contentHash`; null when no payload was served. */
  contentMatches: boolean | null;
}

/** A batch read from the chain and checked against the leaves the gateway serves for it. */
export interface BatchEvent extends AnchoredBatchLog {
  type: 'batch';
  /** Every check of §10.1 steps 2–5 passed (no problem was reported for this batch). */
  verified: boolean;
  /** The leaves served, in leaf order (empty when the batch was not served). */
  leaves: FollowedLeaf[];
}

/**
 * What a follower reports:
 * - `root_mismatch`: the served leaves do not rebuild the anchored root;
 * - `leaf_count`: the batch serves another number of leaves than the log's recordCount;
 * - `leaf_gap`: leafIndex is not 0, 1, 2, … (a gap or a repeat);
 * - `bad_leaf_hash`: a leaf's leafHash is not the hash of its fields;
 * - `bad_proof`: a leaf's proof does not fold to the anchored root;
 * - `content_mismatch`: a served payload (batch leaf or history record) does not hash to its contentHash;
 * - `anchor_mismatch`: the batch's `anchor` disagrees with the log (or names another contract or chain);
 * - `malformed_response`: the gateway answered 200 with something that is not the documented body;
 * - `batch_not_served`: an anchored batch the gateway did not serve within the bound;
 * - `served_not_anchored`: a served record no anchored batch holds (with its fields);
 * - `duplicate_record`: one recordId in two leaves (of one batch or of two).
 */
export type ProblemKind =
  | 'root_mismatch'
  | 'leaf_count'
  | 'leaf_gap'
  | 'bad_leaf_hash'
  | 'bad_proof'
  | 'content_mismatch'
  | 'anchor_mismatch'
  | 'malformed_response'
  | 'batch_not_served'
  | 'served_not_anchored'
  | 'duplicate_record';

export interface ProblemEvent {
  type: 'problem';
  kind: ProblemKind;
  batchId?: Bytes32;
  recordId?: Bytes32;
  /** The anchoring block of the batch concerned, when there is one. */
  blockNumber?: number;
  /** One human-readable line. */
  detail: string;
}

/** The follower has read the chain's logs through `toBlock` (head − confirmations + 1). */
export interface ProgressEvent {
  type: 'progress';
  toBlock: number;
  head: number;
}

export type ChainFollowerEvent = BatchEvent | ProblemEvent | ProgressEvent;

/**
 * A record some source served (a subscription's `records`, history §3.8–3.9): it must turn up
 * in an anchored batch with the same fields (§10.1 step 6).
 */
export interface ServedRecord {
  recordId: Bytes32;
  topic: string;
  subject: string;
  contentHash: Bytes32;
  acceptedAt: number;
  /** The batch the source says holds it (history's `batchId`); null or absent when not named. */
  batchId?: Bytes32 | null;
  /**
   * The canonical payload text as served (history's `payload`), checked against `contentHash`;
   * null or absent when none was served.
   */
  payload?: string | null;
}
