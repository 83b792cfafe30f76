export { ConfigError, type ConfigProblem, loadConfigOrExit, parseEnv } from './config';
export {
  ChainEnv,
  DATA_DIR_RULE,
  DATABASE_URL_RULE,
  DatabaseEnv,
  DEFAULT_OPS_PORT,
  DEFAULT_REDIS_PREFIX,
  DEFAULT_REDIS_URL,
  DeploymentEnv,
  HTTP_URL_RULE,
  JWT_SECRET_RULE,
  LOG_LEVELS,
  LogEnv,
  type LogLevel,
  LogLevelSchema,
  MIN_JWT_SECRET_LENGTH,
  OpsEnv,
  PORT_RULE,
  REDIS_PREFIX_RULE,
  REDIS_URL_RULE,
  RedisEnv,
  RpcEnv,
  SessionRouteEnv,
} from './config-fragments';
export { BaseError, ServiceError, walkError } from './errors';
export { createLogger, type Logger } from './logger';
export { AGAIN, createLoop, type Loop, type LoopOptions, type TickResult } from './loop';
export {
  Counter,
  collectedMetric,
  ensureDefaultMetrics,
  Gauge,
  Histogram,
  type JobCountsSource,
  type Labels,
  QUEUE_STATES,
  type Reading,
  type Registry,
  registerQueueDepths,
  registry,
  sharedMetric,
} from './metrics';
export {
  createOpsServer,
  type OpsServer,
  type OpsServerOptions,
  type ReadinessCheck,
} from './ops-server';
export { createShutdown, exitOnSignals, type Shutdown, type ShutdownHook } from './shutdown';
export { coturnCredential } from './turn-credential';
