export { type App, type AppDeps, createApp, type SyncOnceResult } from './app';
export { type Config, ConfigSchema, loadConfig } from './config';
export { BlockUnavailableError, ChainIdMismatchError, IndexerError, LogFetchError } from './errors';
export { receiptJobId } from './receipts';
export { CursorConflictError } from './sync';
