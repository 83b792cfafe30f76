export type { BroadcastOutcome } from './broadcast';
export { type ChainView, createChainView } from './chain-view';
export {
  type Action,
  type BatchMemory,
  type BatchView,
  decide,
  decideFills,
  findNonceGaps,
  type OpenBatch,
} from './decide';
export { type AnchorEffects, createAnchorEffects, type Outgoing } from './effects';
export { createSignerLock, type SignerLock } from './lock';
export { errorText, revertErrorName } from './revert';
export { createSigner, type SignedAnchor, type SignedFiller, type Signer } from './sign';
export { createSubmitter, type Submitter, type SubmitterDeps } from './submitter';
