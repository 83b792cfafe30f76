export {
  ANVIL_CHAIN_ID,
  ANVIL_TEST_PRIVATE_KEY,
  ANVIL_TEST_PRIVATE_KEY_2,
  type Anvil,
  anvilBinary,
  type StartAnvilOptions,
  startAnvil,
  stopChild,
} from './anvil';
export {
  type Alternated,
  alternate,
  BENCH_ROW_PREFIX,
  type BenchRow,
  benchOption,
  compareRow,
  type Figure,
  formatFigure,
  formatTable,
  isQuick,
  parseRows,
  percentile,
  reportRow,
  summarize,
} from './bench';
export { CHROMIUM_PATH, type LaunchChromiumOptions, launchChromium } from './chromium';
export {
  type RunTurnserverOptions,
  runTurnserver,
  stunBindingAnswered,
  TURNSERVER_PATH,
  type TurnserverProcess,
} from './coturn';
export {
  createTestDatabase,
  createThrowawayPostgres,
  TEST_DATABASE_KINDS,
  TEST_POSTGRES_URL,
  type TestDatabaseKind,
  type ThrowawayPostgres,
} from './database';
export { getFreePort } from './ports';
export {
  deleteRedisPrefix,
  type PrivateRedis,
  startPrivateRedis,
  TEST_REDIS_URL,
  testRedisPrefix,
} from './redis';
export {
  type RandomReorgOptions,
  type ReorgRecord,
  type RpcCall,
  type RpcCallRecord,
  type RpcHook,
  type RpcPhase,
  type RpcProxy,
  type StartRpcProxyOptions,
  startRpcProxy,
} from './rpc-proxy';
export {
  type CheckAnswer,
  type ConnectivityCheck,
  decodeCheckAnswer,
  encodeConnectivityCheck,
  sendConnectivityCheck,
} from './stun';
