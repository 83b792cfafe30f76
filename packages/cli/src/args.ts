import { type ParseArgsConfig, parseArgs } from 'node:util';
import { TOPIC_PATTERN } from '@streamanchor/protocol';

/** Bad command-line use: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure the command reports in one line (exit code 1), details on the next lines. */
export class CommandError extends Error {
  override name = 'CommandError';
  readonly details: string | undefined;
  constructor(message: string, details?: string) {
    super(message);
    this.details = details;
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs, strict, with `--help`/`-h`; its errors become UsageErrors. */
export function parseCommandArgs<T extends Options>(
  argv: string[],
  options: T,
  { positionals = false }: { positionals?: boolean } = {},
) {
  try {
    return parseArgs({
      // `pnpm run x -- --flag …` passes the `--` through; it separates nothing here.
      args: argv[0] === '--' ? argv.slice(1) : argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: positionals,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** `--name` or, when absent, the environment variable; a UsageError when neither is set. */
export function required(
  value: string | undefined,
  flag: string,
  env?: { name: string; values: NodeJS.ProcessEnv },
): string {
  const found = value ?? (env ? env.values[env.name] : undefined);
  if (found === undefined || found === '') {
    throw new UsageError(`${flag} is required${env ? ` (or set ${env.name})` : ''}`);
  }
  return found;
}

const TOPIC_NAME = new RegExp(TOPIC_PATTERN);

/**
 * The gateway, token and topic of a command that reads a topic (`subscribe`):
 * `--url` / `STREAMANCHOR_URL`, `--token` / `STREAMANCHOR_TOKEN`, and `--topic`, checked.
 */
export function topicTarget(
  values: { url?: string; token?: string; topic?: string },
  env: NodeJS.ProcessEnv,
): { url: string; token: string; topic: string } {
  const url = required(values.url, '--url', { name: 'STREAMANCHOR_URL', values: env });
  const token = required(values.token, '--token', { name: 'STREAMANCHOR_TOKEN', values: env });
  const topic = required(values.topic, '--topic');
  if (!TOPIC_NAME.test(topic)) {
    throw new UsageError(`--topic "${topic}" is not a topic name (${TOPIC_PATTERN})`);
  }
  return { url, token, topic };
}

/** A whole number ≥ `min` given as `flag`; undefined when absent. */
export function integer(value: string | undefined, flag: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(number) || number < min) {
    throw new UsageError(`${flag} must be a whole number ≥ ${min}, not "${value}"`);
  }
  return number;
}

/** A positive number of seconds given as `flag` (fractions allowed), in ms; undefined when absent. */
export function seconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) {
    throw new UsageError(`${flag} must be a positive number of seconds, not "${value}"`);
  }
  return Math.round(number * 1000);
}

/** `a, b,` → ['a', 'b']; absent → []. */
export function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}
