// Backfill benchmark (not a test): anchors N batches on a fresh anvil, then times the
// indexer's backfill from the deployment block into PGlite (on disk) and into Postgres.
//
//   cd apps/chain-indexer && npx tsx bench/backfill.ts [N=2000] [perBlock=1]
//
// perBlock=1 mines one anchoring transaction per block (anvil automine); a larger value
// turns automine off and mines perBlock transactions per block. Needs Redis and Postgres
// on 127.0.0.1 (as the tests do). The events belong to no batch of the database, so this
// measures reading logs, inserting anchor_events and moving the cursor.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeys, createRedisConnection } from '@streamanchor/bus';
import { deployStreamAnchor, streamAnchorAbi } from '@streamanchor/contracts';
import { type DatabaseHandle, migrateToLatest, openDatabase } from '@streamanchor/db';
import { createLogger } from '@streamanchor/service-kit';
import {
  createTestDatabase,
  deleteRedisPrefix,
  startAnvil,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import { encodeFunctionData } from 'viem';
import { createApp } from '../src/app';
import { chainClients, mine, randomHex32, testConfig } from '../src/test-fixtures';

const total = Number(process.argv[2] ?? 2000);
const perBlock = Number(process.argv[3] ?? 1);

const anvil = await startAnvil({ args: ['--gas-limit', '1000000000'] });
try {
  const chain = chainClients(anvil.rpcUrl);
  const { publicClient, walletClient } = chain;
  const deployed = await deployStreamAnchor({ walletClient, publicClient });
  const contract = deployed.address.toLowerCase() as `0x${string}`;

  const started = performance.now();
  if (perBlock > 1)
    await publicClient.request({ method: 'evm_setAutomine' as never, params: [false] as never });
  let nonce = await publicClient.getTransactionCount({
    address: walletClient.account.address,
    blockTag: 'pending',
  });
  const fees = await publicClient.estimateFeesPerGas();
  let last: `0x${string}` | undefined;
  for (let i = 0; i < total; i++) {
    last = await walletClient.sendTransaction({
      to: contract,
      data: encodeFunctionData({
        abi: streamAnchorAbi,
        functionName: 'anchorBatch',
        args: [randomHex32(), randomHex32(), 1 + (i % 1000)],
      }),
      nonce: nonce++,
      gas: 150_000n,
      maxFeePerGas: fees.maxFeePerGas * 2n,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    });
    if (perBlock > 1 && (i + 1) % perBlock === 0) await mine(publicClient, 1);
  }
  if (perBlock > 1) {
    await mine(publicClient, 1);
    await publicClient.request({ method: 'evm_setAutomine' as never, params: [true] as never });
  }
  if (last) await publicClient.waitForTransactionReceipt({ hash: last, pollingInterval: 50 });
  const head = await publicClient.getBlockNumber({ cacheTime: 0 });
  console.log(
    `anchored ${total} batches in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `blocks ${deployed.blockNumber}..${head} (${perBlock} per block)`,
  );

  {
    // The RPC and decoding part alone: eth_getLogs in MAX_LOG_RANGE-block ranges, no database.
    const t0 = performance.now();
    let logs = 0;
    for (let from = deployed.blockNumber; from <= head; from += 2000n) {
      const to = from + 1999n < head ? from + 1999n : head;
      logs += (
        await publicClient.getContractEvents({
          address: contract,
          abi: streamAnchorAbi,
          eventName: 'BatchAnchored',
          fromBlock: from,
          toBlock: to,
          strict: true,
        })
      ).length;
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `getLogs only: ${logs} events in ${seconds.toFixed(2)} s = ${Math.round(logs / seconds)} events/s`,
    );
  }

  const logger = createLogger({ service: 'bench', level: 'warn' });
  const kinds: [string, () => Promise<DatabaseHandle & { cleanup?: () => void }>][] = [
    [
      'pglite (on disk)',
      async () => {
        const dir = mkdtempSync(join(tmpdir(), 'sa-bench-pglite-'));
        const handle = await openDatabase({ pgliteDir: dir });
        await migrateToLatest(handle.db);
        return { ...handle, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
      },
    ],
    ['postgres', () => createTestDatabase('postgres')],
  ];
  for (const [label, open] of kinds) {
    const database = await open();
    const prefix = testRedisPrefix('bench');
    const redis = createRedisConnection(TEST_REDIS_URL);
    try {
      const app = createApp({
        config: testConfig({
          rpcUrl: anvil.rpcUrl,
          contract,
          deploymentBlock: Number(deployed.blockNumber),
          redisPrefix: prefix,
        }),
        logger,
        redis,
        keys: createKeys(prefix),
        db: database.db,
        publicClient,
      });
      const t0 = performance.now();
      await app.syncToHead();
      const seconds = (performance.now() - t0) / 1000;
      const { count } = await database.db
        .selectFrom('anchor_events')
        .select((eb) => eb.fn.countAll<string>().as('count'))
        .executeTakeFirstOrThrow();
      console.log(
        `${label}: ${count} events in ${seconds.toFixed(2)} s = ${Math.round(Number(count) / seconds)} events/s`,
      );
      await app.stop();
    } finally {
      redis.disconnect();
      await deleteRedisPrefix(prefix);
      await database.close();
      database.cleanup?.();
    }
  }
} finally {
  await anvil.stop();
}
