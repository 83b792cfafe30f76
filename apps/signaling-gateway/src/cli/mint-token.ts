/**
 * Mints a gateway bearer token and prints only the token (so scripts can capture it):
 *
 *   JWT_SECRET=… pnpm token --sub demo --topics demo,telemetry --ttl 3600
 *
 * `--topics '*'` grants every topic. The secret comes from JWT_SECRET (as the gateway's).
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '@streamanchor/service-kit';
import { mintToken } from '../auth';
import { loadTokenCliConfig } from '../config';

const USAGE =
  'usage: pnpm token --sub <subject> --topics <topic,topic|*> [--ttl <seconds, default 3600>]';

async function main(argv: string[]): Promise<number> {
  let values: { sub?: string; topics?: string; ttl?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
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

  let secret: string;
  try {
    secret = loadTokenCliConfig(process.env).JWT_SECRET;
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
  try {
    const token = await mintToken({ secret, subject: values.sub, topics, ttlSeconds });
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
