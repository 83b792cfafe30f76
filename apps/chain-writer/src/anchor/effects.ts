import type { BatchLedger } from '@streamanchor/db';
import type { Hex } from 'viem';
import type { WriterPublicClient } from '../chain';
import { type BroadcastOutcome, broadcastRawTx } from './broadcast';
import type { SignAnchorParameters, SignedAnchor, SignedFiller, Signer } from './sign';

/** A tx to broadcast: an anchor (with its batch) or a gap filler. */
export interface Outgoing {
  rawTx: Hex;
  txHash: Hex;
  nonce: number;
  batchId?: Hex;
}

/**
 * Everything the submitter does that leaves a trace — signing, the ledger writes, the
 * broadcast — as one object. Production passes `createAnchorEffects(…)`; a test wraps it to
 * fail at a chosen point (a simulated crash) without any hook in the production path.
 */
export interface AnchorEffects {
  signAnchor(parameters: SignAnchorParameters): Promise<SignedAnchor>;
  signFiller(parameters: { nonce: number; attempt: number }): Promise<SignedFiller>;
  /** Stores a signed tx BEFORE it is broadcast (compare-and-set); false when the batch moved on. */
  persist(anchor: SignedAnchor, replaces?: Hex): Promise<boolean>;
  recordAnchoredElsewhere(batchId: Hex): Promise<boolean>;
  returnToBuilt(batchId: Hex): Promise<boolean>;
  broadcast(tx: Outgoing): Promise<BroadcastOutcome>;
}

export type WriterLedger = Pick<
  BatchLedger,
  'recordSigned' | 'recordAnchoredElsewhere' | 'returnToBuilt'
>;

export function createAnchorEffects({
  signer,
  ledger,
  publicClient,
}: {
  signer: Signer;
  ledger: WriterLedger;
  publicClient: WriterPublicClient;
}): AnchorEffects {
  return {
    signAnchor: (parameters) => signer.signAnchor(parameters),
    signFiller: (parameters) => signer.signFiller(parameters),
    persist: (anchor, replaces) =>
      ledger.recordSigned(
        anchor.batchId,
        { signer: signer.address, nonce: anchor.nonce, rawTx: anchor.rawTx, txHash: anchor.txHash },
        replaces,
      ),
    recordAnchoredElsewhere: (batchId) => ledger.recordAnchoredElsewhere(batchId),
    returnToBuilt: (batchId) => ledger.returnToBuilt(batchId),
    broadcast: (tx) => broadcastRawTx(publicClient, { rawTx: tx.rawTx }),
  };
}
