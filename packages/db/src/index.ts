export {
  type DatabaseConfig,
  type DatabaseHandle,
  type DatabaseKind,
  migrateToLatest,
  openDatabase,
} from './database';
export type * from './schema';
