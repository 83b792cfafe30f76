// Database fixtures live in @streamanchor/db/testing (db's own tests use them too).
export {
  createTestDatabase,
  createThrowawayPostgres,
  TEST_DATABASE_KINDS,
  TEST_POSTGRES_URL,
  type TestDatabaseKind,
  type ThrowawayPostgres,
} from '@streamanchor/db/testing';
