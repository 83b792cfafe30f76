export { type Batcher, type BatcherDeps, createBatcher } from './batcher';
export {
  type BatchState,
  type BuiltBatch,
  batchState,
  type CutOptions,
  cutBatch,
  randomBatchId,
} from './cut';
export { type BatchTree, buildBatchTree } from './tree';
