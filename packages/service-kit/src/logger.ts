import { type Logger, pino } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** One JSON logger per service; `service` is stamped on every line so a merged stream stays readable. */
export function createLogger({
  service,
  level = 'info',
}: {
  service: string;
  level?: LogLevel;
}): Logger {
  return pino({ level, base: { service } });
}
