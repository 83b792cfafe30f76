import { assertRedisReachable, createKeys, createRedisConnection } from '@streamanchor/bus';
import {
  createLogger,
  createShutdown,
  exitOnSignals,
  loadConfigOrExit,
} from '@streamanchor/service-kit';
import nodeDataChannel from 'node-datachannel';
import { createApp } from './app';
import { loadConfig } from './config';
import { inspectLibjuicePatch } from './native';

const config = loadConfigOrExit(() => loadConfig(process.env));

const logger = createLogger({ service: 'rtc-relay', level: config.logLevel });
// libdatachannel's own errors through our logger (its warnings include one per oversized
// client message: a client could flood the log with them).
nodeDataChannel.initLogger('Error', (level, message) =>
  logger.warn({ libdatachannel: level }, message),
);

// Without the libjuice#355 fix (applied by `pnpm install`), browsers that reach this relay
// only through TURN over TCP or TLS fail ICE: say so once, where operators look.
const nativeBinary = inspectLibjuicePatch();
if (nativeBinary.status !== 'applied') {
  logger.warn(
    { nativeBinary },
    'node-datachannel lacks the libjuice#355 fix: clients that reach this relay only through TURN over TCP or TLS will not connect (docs/deploy.md)',
  );
}

const redis = createRedisConnection(config.redisUrl, `rtc-relay.${config.relayId}`);
redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
const shutdown = createShutdown({ logger });
// Hooks run last-registered first: the app stops before Redis and node-datachannel go.
shutdown.add(() => {
  redis.disconnect();
  // Process-wide: joins libdatachannel's threads. Only here, never in createApp().stop().
  nodeDataChannel.cleanup();
});

try {
  await assertRedisReachable(redis, config.redisUrl);
  const app = createApp({ config, logger, redis, keys: createKeys(config.redisPrefix) });
  // SIGTERM drains first (docs/protocol.md §5.4.1: no new sessions, each session told
  // relay_draining, up to DRAIN_TIMEOUT_MS for them to leave), then stops. A second signal
  // ends the drain at once (owed acks still go out), a third exits on the spot.
  const cutDrain = new AbortController();
  shutdown.add(async () => {
    await app.drain({ signal: cutDrain.signal });
    await app.stop();
  });
  exitOnSignals(shutdown, logger, { onSecondSignal: () => cutDrain.abort() });
  await app.start();
} catch (error) {
  logger.fatal({ err: error }, 'relay failed to start');
  await shutdown.run('start failed');
  process.exit(1);
}
