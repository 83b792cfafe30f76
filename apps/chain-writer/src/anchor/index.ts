export { createSignerLock, type SignerLock } from './lock';
export {
  createSubmitter,
  revertErrorName,
  type SignedAnchor,
  type Submitter,
  type SubmitterDeps,
  type SubmitterHooks,
} from './submitter';
