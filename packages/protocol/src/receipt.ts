import { keccak_256 } from '@noble/hashes/sha3';
import { type Static, Type } from '@sinclair/typebox';
import { type Keccak256, loadProofVerifier, verifyProofWith } from './merkle';
import { Address, Bytes32, EpochMillis, Subject, Topic } from './primitives';

/**
 * Where a receipt's anchoring stands on the chain:
 * - `included`: the BatchAnchored event is in a block the indexer checked is canonical,
 *   `confirmations` deep; a reorg can still drop it;
 * - `final`: that block is at least the indexer's finality depth deep; never revoked;
 * - `reorged`: the block named in this receipt left the canonical chain. The record is
 *   still acked and will be anchored again; a new receipt (higher `revision`) follows.
 */
export const RECEIPT_STATUSES = {
  included: 'In a canonical block, not yet final; a reorg may still drop it.',
  final: 'In a block at least the finality depth deep: it stays.',
  reorged: 'The block this receipt names left the canonical chain; a new receipt follows.',
} as const;
export type ReceiptStatus = keyof typeof RECEIPT_STATUSES;
export const ReceiptStatus = Type.Union(
  Object.keys(RECEIPT_STATUSES).map((status) => Type.Literal(status as ReceiptStatus)),
);

/**
 * Where a batch is anchored, as one notice of its anchoring (included, final, reorged)
 * states it: the half of a receipt that every record of the batch shares. A `receipts`
 * message (protocol v2) carries it once for many records.
 */
export const ReceiptAnchor = Type.Object(
  {
    status: ReceiptStatus,
    /** Blocks from the anchoring block to the indexer's head, both counted (0 when reorged). */
    confirmations: Type.Integer({ minimum: 0 }),
    /**
     * Increases with every change of the batch's anchoring. Of two receipts for one record,
     * the one with the higher revision is current (they may arrive out of order).
     */
    revision: Type.Integer({ minimum: 1 }),
    batchId: Bytes32,
    merkleRoot: Bytes32,
    recordCount: Type.Integer({ minimum: 1 }),
    chainId: Type.Integer({ minimum: 1 }),
    contract: Address,
    txHash: Bytes32,
    blockNumber: Type.Integer({ minimum: 0 }),
    blockHash: Bytes32,
    logIndex: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type ReceiptAnchor = Static<typeof ReceiptAnchor>;

/**
 * The half of a receipt that is the record's own: its leaf fields, leaf and proof. It never
 * changes once the record is batched (a reorg re-anchors the same batch, same root).
 */
export const ReceiptRecord = Type.Object(
  {
    recordId: Bytes32,
    topic: Topic,
    subject: Subject,
    contentHash: Bytes32,
    acceptedAt: EpochMillis,
    leafHash: Bytes32,
    /** Position of the record in the batch, in the order the writer batched it. */
    leafIndex: Type.Integer({ minimum: 0 }),
    proof: Type.Array(Bytes32),
  },
  { additionalProperties: false },
);
export type ReceiptRecord = Static<typeof ReceiptRecord>;

/**
 * Proof that one record is in a batch anchored on chain. Everything a third party
 * needs to verify it: the leaf fields, the proof, and where the root was emitted.
 * It is exactly a ReceiptAnchor and a ReceiptRecord together (receiptOf).
 */
export const Receipt = Type.Object(
  { ...ReceiptAnchor.properties, ...ReceiptRecord.properties },
  { additionalProperties: false },
);
export type Receipt = Static<typeof Receipt>;

/** The receipt of `record` under `anchor` (members in the order docs/protocol.md §9 lists them). */
export function receiptOf(anchor: ReceiptAnchor, record: ReceiptRecord): Receipt {
  return {
    status: anchor.status,
    confirmations: anchor.confirmations,
    revision: anchor.revision,
    recordId: record.recordId,
    topic: record.topic,
    subject: record.subject,
    contentHash: record.contentHash,
    acceptedAt: record.acceptedAt,
    leafHash: record.leafHash,
    leafIndex: record.leafIndex,
    proof: record.proof,
    batchId: anchor.batchId,
    merkleRoot: anchor.merkleRoot,
    recordCount: anchor.recordCount,
    chainId: anchor.chainId,
    contract: anchor.contract,
    txHash: anchor.txHash,
    blockNumber: anchor.blockNumber,
    blockHash: anchor.blockHash,
    logIndex: anchor.logIndex,
  };
}

/** The two halves of a receipt (the inverse of receiptOf). */
export function splitReceipt(receipt: Receipt): { anchor: ReceiptAnchor; record: ReceiptRecord } {
  return {
    anchor: {
      status: receipt.status,
      confirmations: receipt.confirmations,
      revision: receipt.revision,
      batchId: receipt.batchId,
      merkleRoot: receipt.merkleRoot,
      recordCount: receipt.recordCount,
      chainId: receipt.chainId,
      contract: receipt.contract,
      txHash: receipt.txHash,
      blockNumber: receipt.blockNumber,
      blockHash: receipt.blockHash,
      logIndex: receipt.logIndex,
    },
    record: {
      recordId: receipt.recordId,
      topic: receipt.topic,
      subject: receipt.subject,
      contentHash: receipt.contentHash,
      acceptedAt: receipt.acceptedAt,
      leafHash: receipt.leafHash,
      leafIndex: receipt.leafIndex,
      proof: receipt.proof,
    },
  };
}

/**
 * Checks the receipt's own arithmetic: the leaf hash matches the leaf fields, and the
 * proof leads from that leaf to `merkleRoot`. It does not check the chain; a verifier
 * must also confirm that `merkleRoot` was emitted for `batchId` by `contract`.
 *
 * The verdict is OpenZeppelin's (`leafHash(receipt) === receipt.leafHash &&
 * StandardMerkleTree.verify(...)`), computed without the library (see verifyProofWith);
 * malformed input gives false rather than an exception. Pure JS (@noble/hashes) and
 * stateless; for hot paths, createReceiptProofVerifier is much faster.
 */
export function verifyReceiptProof(receipt: Receipt): boolean {
  return verifyProofWith(nobleKeccak, receipt);
}

export type ReceiptProofVerifier = (receipt: Receipt) => boolean;

/**
 * verifyReceiptProof's check for hot paths such as the indexer's receipts outbox: on
 * hash-wasm's keccak-256 (WebAssembly, instantiated once per process, hence async; the
 * returned check is synchronous), and remembering the inner-node hashes it computed, so that
 * the receipts of one batch share their upper proof levels (see createProofVerifier). Same
 * verdicts. Create one per hot path and keep it.
 */
export function createReceiptProofVerifier(): Promise<ReceiptProofVerifier> {
  return loadProofVerifier();
}

const nobleKeccak: Keccak256 = (data) => keccak_256(data);
