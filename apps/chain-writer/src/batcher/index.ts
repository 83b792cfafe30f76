export { type BatcherDeps, createBatcher } from './batcher';
export { type BuiltBatch, batchDue, type CutOptions, cutBatch, randomBatchId } from './cut';
export { type BatchTree, buildBatchTree } from './tree';
