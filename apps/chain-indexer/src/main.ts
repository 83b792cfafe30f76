import {
  assertRedisReachable,
  createKeys,
  createRedisConnection,
  redactUrl,
} from '@streamanchor/bus';
import { openServiceDatabase } from '@streamanchor/db';
import {
  createLogger,
  createShutdown,
  exitOnSignals,
  loadConfigOrExit,
} from '@streamanchor/service-kit';
import { createPublicClient, http } from 'viem';
import { createApp } from './app';
import { loadConfig } from './config';

async function main(): Promise<void> {
  const config = loadConfigOrExit(() => loadConfig(process.env));
  const logger = createLogger({ service: 'chain-indexer', level: config.logLevel });
  const shutdown = createShutdown({ logger });
  exitOnSignals(shutdown, logger);
  try {
    const database = await openServiceDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      logger,
    });
    shutdown.add(() => database.close());

    const redis = createRedisConnection(config.redisUrl, 'chain-indexer');
    shutdown.add(() => void redis.disconnect());
    await assertRedisReachable(redis, config.redisUrl);
    logger.info({ redis: redactUrl(config.redisUrl), prefix: config.redisPrefix }, 'redis ready');

    const publicClient = createPublicClient({
      transport: http(config.rpcUrl, { retryCount: 3, timeout: 30_000 }),
    });
    const app = createApp({
      config,
      logger,
      redis,
      keys: createKeys(config.redisPrefix),
      db: database.db,
      publicClient,
    });
    await app.start();
    shutdown.add(() => app.stop());
  } catch (error) {
    logger.fatal(
      { err: error, details: (error as { details?: unknown }).details },
      'chain-indexer failed to start',
    );
    await shutdown.run('start-up failure');
    process.exit(1);
  }
}

void main();
