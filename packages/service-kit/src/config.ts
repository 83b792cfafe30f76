import type { Static, TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { BaseError } from '@streamanchor/protocol';

/** One bad variable: its name and what is wrong with it (with the variable's description). */
export interface ConfigProblem {
  variable: string;
  message: string;
}

/** Thrown when the environment does not describe a valid configuration; the message names each variable. */
export class ConfigError extends BaseError<{
  service: string;
  problems: readonly ConfigProblem[];
}> {
  override name = 'ConfigError';
  constructor(
    readonly service: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    const shortMessage = `Invalid configuration for ${service}`;
    super(shortMessage, {
      details: { service, problems },
      message: `${shortMessage}:\n${problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n')}`,
    });
  }
}

type Env = Record<string, string | undefined>;

/**
 * Parses environment variables against a TypeBox object whose keys are the variable names.
 * Empty strings count as unset, defaults apply, numbers and booleans are converted.
 */
export function parseEnv<T extends TObject>(service: string, schema: T, env: Env): Static<T> {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const converted = Value.Default(schema, Value.Convert(schema, raw));
  if (Value.Check(schema, converted)) return converted as Static<T>;
  const problems = [...Value.Errors(schema, converted)].map((error) => {
    const variable = error.path.replace(/^\//, '') || '(root)';
    const hint = schema.properties[variable]?.description;
    return { variable, message: hint ? `${error.message} (${hint})` : error.message };
  });
  throw new ConfigError(service, dedupe(problems));
}

function dedupe<T extends { variable: string }>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((item) => !seen.has(item.variable) && seen.add(item.variable));
}

/**
 * For `main.ts` files: runs `load` (which parses the environment) and returns its result,
 * or prints the ConfigError's message (one line per bad variable) and exits with status 1.
 * Any other error is rethrown.
 */
export function loadConfigOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
}
