export type { AnchorEffects, SignedAnchor } from './anchor';
export { type App, type AppDeps, createApp, type WriterMetrics } from './app';
export { createChainClients, type WriterPublicClient, type WriterWalletClient } from './chain';
export { type Config, ConfigSchema, loadConfig } from './config';
export {
  ChainIdMismatchError,
  ContractNotFoundError,
  MalformedJobError,
  MissingWriterRoleError,
  WriterError,
} from './errors';
