/**
 * chain-writer and chain-indexer in ONE process, sharing one database handle.
 *
 * Why: without DATABASE_URL both services use PGlite, an embedded Postgres that lives in
 * the process that opened it; two processes must never open the same PGlite folder (each
 * would take it for its own and corrupt it). So the local stack, when it runs on PGlite,
 * starts this file instead of the two services' main.ts: it opens the database once,
 * migrates it, and gives the same handle to both apps' createApp. With DATABASE_URL set
 * the stack runs them as separate processes, as in production.
 */
import { assertRedisReachable, createKeys, createRedisConnection } from '@streamanchor/bus';
import * as indexer from '@streamanchor/chain-indexer';
import * as writer from '@streamanchor/chain-writer';
import { openServiceDatabase } from '@streamanchor/db';
import {
  createLogger,
  createShutdown,
  exitOnSignals,
  loadConfigOrExit,
} from '@streamanchor/service-kit';

async function main(): Promise<void> {
  const writerConfig = loadConfigOrExit(() => writer.loadConfig(process.env));
  const indexerConfig = loadConfigOrExit(() => indexer.loadConfig(process.env));
  const level = writerConfig.LOG_LEVEL;
  const logger = createLogger({ service: 'chain-services', level });
  const shutdown = createShutdown({ logger });
  exitOnSignals(shutdown, logger);
  try {
    if (writerConfig.DATABASE_URL) {
      logger.warn(
        'DATABASE_URL is set: separate chain-writer and chain-indexer processes are the normal setup',
      );
    }
    // One handle, shared by the writer and the indexer below.
    const database = await openServiceDatabase({
      databaseUrl: writerConfig.DATABASE_URL,
      dataDir: writerConfig.DATA_DIR,
      logger,
    });
    shutdown.add(() => database.close());

    const writerRedis = createRedisConnection(writerConfig.REDIS_URL, 'chain-writer');
    shutdown.add(() => void writerRedis.disconnect());
    await assertRedisReachable(writerRedis, writerConfig.REDIS_URL);
    const indexerRedis = createRedisConnection(indexerConfig.redisUrl, 'chain-indexer');
    shutdown.add(() => void indexerRedis.disconnect());
    await assertRedisReachable(indexerRedis, indexerConfig.redisUrl);

    const writerApp = writer.createApp({
      config: writerConfig,
      logger: createLogger({ service: 'chain-writer', level }),
      redis: writerRedis,
      keys: createKeys(writerConfig.REDIS_PREFIX),
      db: database.db,
    });
    await writerApp.start();
    shutdown.add(() => writerApp.stop());

    const indexerApp = indexer.createApp({
      // One ops server per process: the writer's serves the process' registry, which holds
      // the indexer's metrics too (the same OPS_PORT would collide).
      config: { ...indexerConfig, ops: undefined },
      logger: createLogger({ service: 'chain-indexer', level: indexerConfig.logLevel }),
      redis: indexerRedis,
      keys: createKeys(indexerConfig.redisPrefix),
      db: database.db,
    });
    await indexerApp.start();
    shutdown.add(() => indexerApp.stop());
    logger.info('chain-writer and chain-indexer started');
  } catch (error) {
    logger.fatal(
      { err: error, details: (error as { details?: unknown }).details },
      'chain services failed to start',
    );
    await shutdown.run('start-up failure');
    process.exit(1);
  }
}

void main();
