import { type Logger, pino } from 'pino';
import type { LogLevel } from './config-fragments';

export type { Logger, LogLevel };

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
