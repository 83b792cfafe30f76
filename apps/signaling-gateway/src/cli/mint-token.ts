/**
 * Mints a gateway bearer token and prints only the token (so scripts can capture it):
 *
 *   JWT_SECRET=… pnpm run token --sub demo --topics demo,telemetry --subscribe demo --ttl 3600
 *
 * (`pnpm run token`: a bare `pnpm token` is pnpm's own command.) `--topics` grants publishing,
 * `--subscribe` subscribing; at least one is required, and `'*'` grants every topic. The
 * secret comes from JWT_SECRET (as the gateway's; the dev stack keeps its own in
 * DATA_DIR/jwt-secret); JWT_AUDIENCE and JWT_ISSUER, when set, become the aud and iss claims.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '@streamanchor/service-kit';
import { mintToken } from '../auth';
import { loadTokenCliConfig } from '../config';

const USAGE =
  'usage: pnpm run token --sub <subject> [--topics <topic,topic|*>] [--subscribe <topic,topic|*>] [--ttl <seconds, default 3600>]\n' +
  '  (at least one of --topics, to publish, and --subscribe, to subscribe)';

async function main(argv: string[]): Promise<number> {
  let values: { sub?: string; topics?: string; subscribe?: string; ttl?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      // `pnpm run token -- --sub …` passes the `--` through; it separates nothing here.
      args: argv[0] === '--' ? argv.slice(1) : argv,
      options: {
        sub: { type: 'string' },
        topics: { type: 'string' },
        subscribe: { type: 'string' },
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
  if (!values.sub || (!values.topics && !values.subscribe)) {
    console.error(`--sub, and --topics or --subscribe (or both), are required\n${USAGE}`);
    return 2;
  }
  const ttlSeconds = Number(values.ttl);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
    console.error(`--ttl must be a positive whole number of seconds\n${USAGE}`);
    return 2;
  }
  const topics = topicList(values.topics);
  const subscribe = topicList(values.subscribe);

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
      subscribe,
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

/** `a, b,` → ['a', 'b']; absent → []. */
function topicList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((topic) => topic.trim())
    .filter((topic) => topic.length > 0);
}

process.exitCode = await main(process.argv.slice(2));
