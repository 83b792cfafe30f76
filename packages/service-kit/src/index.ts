export { createLogger, type Logger, type LogLevel } from './logger';
export { createShutdown, exitOnSignals, type Shutdown, type ShutdownHook } from './shutdown';
export { ConfigError, parseEnv } from './config';
export { LogLevelSchema } from './schemas';
