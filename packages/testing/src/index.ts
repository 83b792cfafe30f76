export { getFreePort } from './ports';
export {
  startAnvil,
  stopChild,
  anvilBinary,
  ANVIL_TEST_PRIVATE_KEY,
  ANVIL_TEST_PRIVATE_KEY_2,
  ANVIL_CHAIN_ID,
  type Anvil,
  type StartAnvilOptions,
} from './anvil';
export { createTestDatabase, TEST_DATABASE_KINDS, TEST_POSTGRES_URL, type TestDatabaseKind } from './database';
export { TEST_REDIS_URL, testRedisPrefix, deleteRedisPrefix } from './redis';
export { launchChromium, CHROMIUM_PATH } from './chromium';
