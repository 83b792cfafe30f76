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
import { ChainIdMismatchError } from './errors';
import { createLeaderElection } from './leader';

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
    const actualChainId = await publicClient.getChainId();
    if (actualChainId !== config.chainId)
      throw new ChainIdMismatchError(config.chainId, actualChainId, config.rpcUrl);

    // One active indexer per chain and contract; the others wait as standby (src/leader).
    const election = createLeaderElection({
      db: database.db,
      databaseUrl: config.databaseUrl,
      chainId: config.chainId,
      contract: config.contract,
      leaseMs: config.leaseMs,
      logger,
    });
    const terms = (async () => {
      while (!shutdown.isShuttingDown) {
        let term: Awaited<ReturnType<typeof election.acquire>>;
        try {
          term = await election.acquire(shutdown.signal);
        } catch (error) {
          if (shutdown.isShuttingDown) return;
          throw error;
        }
        logger.info({ epoch: Number(term.epoch) }, `became active (epoch ${term.epoch})`);
        const app = createApp({
          config,
          logger,
          redis,
          keys: createKeys(config.redisPrefix),
          db: database.db,
          publicClient,
          fence: term.fence,
        });
        try {
          await app.start();
          const stopped = new Promise<void>((resolve) => {
            if (shutdown.signal.aborted) resolve();
            else shutdown.signal.addEventListener('abort', () => resolve(), { once: true });
          });
          const reason = await Promise.race([term.lost, stopped]);
          if (!shutdown.isShuttingDown)
            logger.error({ reason, epoch: Number(term.epoch) }, 'lost the lock; stopping');
        } finally {
          // A stale write still in flight is rejected by the fence; stop, then let go.
          await app
            .stop()
            .catch((error: unknown) => logger.warn({ err: error }, 'stopping the indexer failed'));
          await term.release();
        }
        if (!shutdown.isShuttingDown) logger.info('stopped; back to standby');
      }
    })();
    terms.catch(async (error: unknown) => {
      if (shutdown.isShuttingDown) {
        logger.error({ err: error }, 'chain-indexer failed while stopping');
        return;
      }
      logger.fatal(
        { err: error, details: (error as { details?: unknown }).details },
        'chain-indexer failed',
      );
      await shutdown.run('failure');
      process.exit(1);
    });
    // Stops the active term (releasing the lock: a standby takes over at once) or the wait.
    shutdown.add(() => terms.catch(() => {}));
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
