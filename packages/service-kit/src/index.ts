export { ConfigError, loadConfigOrExit, parseEnv } from './config';
export { BaseError, ServiceError, walkError } from './errors';
export { createLogger, type Logger, type LogLevel } from './logger';
export { LogLevelSchema } from './schemas';
export { createShutdown, exitOnSignals, type Shutdown, type ShutdownHook } from './shutdown';
