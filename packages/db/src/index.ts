export {
  type DatabaseConfig,
  type DatabaseHandle,
  type DatabaseKind,
  type DatabaseLogger,
  migrateToLatest,
  openDatabase,
  openServiceDatabase,
} from './database';
export type * from './schema';
