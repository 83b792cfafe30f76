export { openDatabase, migrateToLatest, type DatabaseHandle, type DatabaseConfig, type DatabaseKind } from './database';
export type * from './schema';
