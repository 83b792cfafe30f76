/**
 * Mints a gateway bearer token and prints only the token (so scripts can capture it):
 *
 *   JWT_SECRET=… pnpm run token --sub demo --topics demo,telemetry --ttl 3600
 *
 * (`pnpm run token`: a bare `pnpm token` is pnpm's own command.) `--topics '*'` grants every
 * topic. The secret comes from JWT_SECRET (as the gateway's; the dev stack keeps its own in
 * DATA_DIR/jwt-secret); JWT_AUDIENCE and JWT_ISSUER, when set, become the aud and iss claims.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '@streamanchor/service-kit';
import { mintToken } from '../auth';
import { loadTokenCliConfig } from '../config';

const USAGE =
  'usage: pnpm run token --sub <subject> --topics <topic,topic|*> [--ttl <seconds, default 3600>]';

async function main(argv: string[]): Promise<number> {
  let values: { sub?: string; topics?: string; ttl?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      // `pnpm run token -- --sub …` passes the `--` through; it separates nothing here.
      args: argv[0] === '--' ? argv.slice(1) : argv,
      options: {
        sub: { type: 'string' },
        topics: { type: 'string' },
        ttl: { type: 'string', default: '3600' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.sub || !values.topics) {
    console.error(`--sub and --topics are required\n${USAGE}`);
    return 2;
  }
  const ttlSeconds = Number(values.ttl);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
    console.error(`--ttl must be a positive whole number of seconds\n${USAGE}`);
    return 2;
  }
  const topics = values.topics
    .split(',')
    .map((topic) => topic.trim())
    .filter((topic) => topic.length > 0);

  let config: ReturnType<typeof loadTokenCliConfig>;
  try {
    config = loadTokenCliConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
  try {
    const token = await mintToken({
      secret: config.JWT_SECRET,
      subject: values.sub,
      topics,
      ttlSeconds,
      audience: config.JWT_AUDIENCE,
      issuer: config.JWT_ISSUER,
    });
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
