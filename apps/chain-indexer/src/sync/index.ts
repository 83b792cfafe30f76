export { type AnchorEvent, createLogReader, type LogReader } from './logs';
export {
  type ApplyResult,
  type Cursor,
  CursorConflictError,
  type CursorKey,
  readCursor,
} from './store';
export { createSyncer, type Syncer, type SyncerDeps, type SyncStep } from './syncer';
