import { assertRedisReachable, createKeys, createRedisConnection } from '@streamanchor/bus';
import { openServiceDatabase } from '@streamanchor/db';
import {
  createLogger,
  createShutdown,
  exitOnSignals,
  loadConfigOrExit,
} from '@streamanchor/service-kit';
import type { Address } from 'viem';
import { createApp } from './app';
import { createChainClients, verifyChain } from './chain';
import { loadConfig } from './config';

async function main(): Promise<void> {
  const config = loadConfigOrExit(() => loadConfig(process.env));
  const logger = createLogger({ service: 'chain-writer', level: config.LOG_LEVEL });
  const shutdown = createShutdown({ logger });
  exitOnSignals(shutdown, logger);
  try {
    const { publicClient, walletClient } = createChainClients(config);
    // Fail fast, before touching the database: the RPC must serve CHAIN_ID (start() checks again).
    await verifyChain({
      publicClient,
      chainId: config.CHAIN_ID,
      contract: config.CONTRACT_ADDRESS as Address,
      signer: walletClient.account.address,
      rpcUrl: config.RPC_URL,
    });

    const database = await openServiceDatabase({
      databaseUrl: config.DATABASE_URL,
      dataDir: config.DATA_DIR,
      logger,
    });
    shutdown.add(() => database.close());

    const redis = createRedisConnection(config.REDIS_URL, 'chain-writer');
    shutdown.add(() => void redis.disconnect());
    await assertRedisReachable(redis, config.REDIS_URL);

    const app = createApp({
      config,
      logger,
      redis,
      keys: createKeys(config.REDIS_PREFIX),
      db: database.db,
      publicClient,
      walletClient,
    });
    // start() checks eth_chainId against CHAIN_ID (and the contract and WRITER_ROLE) first.
    await app.start();
    shutdown.add(() => app.stop());
  } catch (error) {
    const { shortMessage, details } = error as { shortMessage?: string; details?: unknown };
    logger.fatal(
      { err: error, details },
      `chain-writer failed to start: ${shortMessage ?? (error as Error).message}`,
    );
    await shutdown.run('start failed');
    process.exit(1);
  }
}

void main();
