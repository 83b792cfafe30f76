import { assertRedisReachable, createKeys, redactUrl } from '@streamanchor/bus';
import {
  createLogger,
  createShutdown,
  exitOnSignals,
  loadConfigOrExit,
} from '@streamanchor/service-kit';
import { Redis } from 'ioredis';
import { createApp } from './app';
import { loadConfig, SERVICE_NAME } from './config';

const config = loadConfigOrExit(() => loadConfig(process.env));
const logger = createLogger({ service: SERVICE_NAME, level: config.LOG_LEVEL });
const shutdown = createShutdown({ logger });

// Commands fail after a couple of retries instead of queueing forever while Redis is down,
// so requests get a 5xx problem rather than hang. (BullMQ's blocking readers duplicate this
// connection with maxRetriesPerRequest: null.)
const redis = new Redis(config.REDIS_URL, {
  maxRetriesPerRequest: 2,
  connectionName: SERVICE_NAME,
});
redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
shutdown.add(async () => {
  await redis.quit().catch(() => redis.disconnect());
});

try {
  await assertRedisReachable(redis, config.REDIS_URL);
} catch (error) {
  logger.fatal({ err: error, redis: redactUrl(config.REDIS_URL) }, 'Redis is not reachable');
  await shutdown.run('redis unreachable');
  process.exit(1);
}

const app = createApp({ config, logger, redis, keys: createKeys(config.REDIS_PREFIX) });
shutdown.add(() => app.stop());
exitOnSignals(shutdown, logger);

try {
  const { url } = await app.start();
  logger.info(
    {
      url,
      webDistDir: config.WEB_DIST_DIR ?? null,
      corsOrigins: config.CORS_ORIGINS,
      iceProvider: config.ICE_PROVIDER,
    },
    'signaling gateway listening',
  );
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  await shutdown.run('start failed');
  process.exit(1);
}
