// Active and standby chain-indexers as real processes on one Postgres and one Redis.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKeys, createRedisConnection, createWorker } from '@streamanchor/bus';
import { deployStreamAnchor } from '@streamanchor/contracts';
import { type DatabaseHandle, migrateToLatest, openDatabase } from '@streamanchor/db';
import {
  type Anvil,
  createThrowawayPostgres,
  deleteRedisPrefix,
  startAnvil,
  TEST_REDIS_URL,
  type ThrowawayPostgres,
  testRedisPrefix,
} from '@streamanchor/testing';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LEADER_LOCK_CLASS } from '../src/leader';
import { receiptJobId } from '../src/receipts';
import {
  anchorOnChain,
  type ChainClients,
  chainClients,
  mine,
  randomSessionId,
  seedBatch,
} from '../src/test-fixtures';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Generous: process start-up (tsx) takes seconds on a loaded machine; timings are printed, not asserted. */
const WAIT = { timeout: 45_000, interval: 25 };
const TEST_TIMEOUT = 120_000;

interface IndexerProcess {
  name: string;
  child: ChildProcess;
  /** Parsed log lines, with the time each arrived. */
  logs: { at: number; msg: string; line: Record<string, unknown> }[];
  output: () => string;
  /** Resolves with the arrival time of the first log line whose msg matches, from `since` on. */
  waitFor(msg: string | RegExp, since?: number): Promise<number>;
}

describe('chain-indexer active and standby (processes)', () => {
  let anvil: Anvil;
  let postgres: ThrowawayPostgres;
  let database: DatabaseHandle;
  let redis: Redis;
  let prefix: string;
  let chain: ChainClients;
  let contract: `0x${string}`;
  let deploymentBlock: number;
  let dataDir: string;
  let processes: IndexerProcess[];
  let cleanups: (() => Promise<unknown>)[];

  beforeEach(async () => {
    processes = [];
    cleanups = [];
    [anvil, postgres] = await Promise.all([startAnvil(), createThrowawayPostgres('standby')]);
    database = await openDatabase({ databaseUrl: postgres.url, pgliteDir: 'unused', poolSize: 2 });
    await migrateToLatest(database.db);
    prefix = testRedisPrefix('standby');
    redis = createRedisConnection(TEST_REDIS_URL, 'standby-test');
    chain = chainClients(anvil.rpcUrl);
    const deployed = await deployStreamAnchor({
      walletClient: chain.walletClient,
      publicClient: chain.publicClient,
    });
    contract = deployed.address.toLowerCase() as `0x${string}`;
    deploymentBlock = Number(deployed.blockNumber);
    dataDir = mkdtempSync(join(tmpdir(), 'sa-standby-'));
  });

  afterEach(async () => {
    await Promise.all(
      processes.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    for (const cleanup of cleanups.reverse()) await cleanup();
    redis.disconnect();
    await deleteRedisPrefix(prefix);
    await database.close();
    await postgres.drop();
    await anvil.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function startIndexer(name: string): IndexerProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: appDir,
      env: {
        PATH: process.env.PATH ?? '',
        RPC_URL: anvil.rpcUrl,
        CHAIN_ID: '31337',
        CONTRACT_ADDRESS: contract,
        DEPLOYMENT_BLOCK: String(deploymentBlock),
        DATABASE_URL: postgres.url,
        DATA_DIR: dataDir,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: prefix,
        POLL_INTERVAL_MS: '50',
        FINALITY_DEPTH: '3',
        INDEXER_LEASE_MS: '2000',
        LOG_LEVEL: 'info',
        // Two processes on one host: no ops server port to share.
        OPS_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: IndexerProcess['logs'] = [];
    let text = '';
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      const at = Date.now();
      text += chunk.toString();
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const raw of lines) {
        try {
          const line = JSON.parse(raw) as Record<string, unknown>;
          logs.push({ at, msg: String(line.msg), line });
        } catch {}
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    const indexer: IndexerProcess = {
      name,
      child,
      logs,
      output: () => text,
      async waitFor(msg, since = 0) {
        const match = (m: string) => (typeof msg === 'string' ? m === msg : msg.test(m));
        return vi.waitFor(() => {
          const found = logs.find((log) => log.at >= since && match(log.msg));
          if (!found) throw new Error(`${name}: no "${msg}" yet; output:\n${text.slice(-3000)}`);
          return found.at;
        }, WAIT);
      },
    };
    processes.push(indexer);
    return indexer;
  }

  /** What a relay would receive: every receiptNotice job id on relay-a's queue. */
  function relayJobs(): string[] {
    const ids: string[] = [];
    const worker = createWorker(
      { connection: redis, keys: createKeys(prefix) },
      'receipts',
      'relay-a',
      async (job) => {
        ids.push(String(job.id));
        return { delivered: 0 };
      },
    );
    cleanups.push(() => worker.close());
    return ids;
  }

  const unsentNotices = async () =>
    Number(
      (
        await database.db
          .selectFrom('receipt_notices')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('sent_at', 'is', null)
          .executeTakeFirstOrThrow()
      ).n,
    );
  const expectedJobIds = async () =>
    (
      await database.db.selectFrom('receipt_notices').select(['batch_id', 'revision']).execute()
    ).map((notice) => receiptJobId(notice.batch_id, notice.revision, 'relay-a', 0, 1));

  const newBatch = () =>
    seedBatch(database.db, {
      contract,
      sessions: [{ relayId: 'relay-a', sessionId: randomSessionId(), records: 2 }],
    });

  it(
    'default',
    async () => {
      const jobs = relayJobs();
      const a = startIndexer('a');
      await a.waitFor('became active (epoch 1)');
      const b = startIndexer('b');
      await b.waitFor('waiting as standby');

      // The active one indexes and sends the notice.
      const first = await newBatch();
      await anchorOnChain(chain, contract, first);
      const firstIncluded = receiptJobId(first.batchId, 1, 'relay-a', 0, 1);
      await vi.waitFor(async () => {
        expect(jobs).toContain(firstIncluded);
        expect(await unsentNotices()).toBe(0);
      }, WAIT);
      expect(b.logs.some((log) => log.msg === 'indexed BatchAnchored events')).toBe(false);

      // kill -9: no clean release; Postgres ends the session and the standby is granted the lock.
      const killedAt = Date.now();
      a.child.kill('SIGKILL');
      const activeAt = await b.waitFor('became active (epoch 2)');
      console.log(`kill -9 of the active indexer: standby active after ${activeAt - killedAt} ms`);

      // What comes after the kill is indexed by the new active one; both batches go final.
      const second = await newBatch();
      await anchorOnChain(chain, contract, second);
      await b.waitFor('indexed BatchAnchored events', killedAt);
      await mine(chain.publicClient, 3);
      await vi.waitFor(async () => {
        const statuses = await database.db
          .selectFrom('batches')
          .select('status')
          .where('batch_id', 'in', [first.batchId, second.batchId])
          .execute();
        expect(statuses.map((row) => row.status)).toEqual(['final', 'final']);
        expect(await unsentNotices()).toBe(0);
        expect(jobs.length).toBeGreaterThanOrEqual((await expectedJobIds()).length);
      }, WAIT);
      console.log(
        `kill -9: second batch final, all notices sent ${Date.now() - killedAt} ms after`,
      );
      // Every notice (batch revision) exactly once: none lost, none sent twice across the takeover.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const expected = await expectedJobIds();
      expect(expected).toHaveLength(4);
      expect([...jobs].sort()).toEqual([...expected].sort());
      const events = await database.db.selectFrom('anchor_events').select('batch_id').execute();
      expect(events.map((row) => row.batch_id).sort()).toEqual(
        [first.batchId, second.batchId].sort(),
      );
    },
    TEST_TIMEOUT,
  );

  it(
    'error: a frozen active indexer is replaced after the lease and stops when it wakes; one whose lock is taken away stops; a clean stop hands over at once',
    async () => {
      const jobs = relayJobs();
      const a = startIndexer('a');
      await a.waitFor('became active (epoch 1)');
      const b = startIndexer('b');
      await b.waitFor('waiting as standby');

      // Frozen (SIGSTOP: a GC pause, a stalled VM): its lock session goes silent, and Postgres
      // ends it after INDEXER_LEASE_MS (idle_session_timeout); the standby takes over.
      const frozenAt = Date.now();
      a.child.kill('SIGSTOP');
      const leaseAt = await b.waitFor('became active (epoch 2)');
      console.log(
        `frozen active indexer (lease 2000 ms): standby active after ${leaseAt - frozenAt} ms`,
      );
      const wokenAt = Date.now();
      a.child.kill('SIGCONT');
      await a.waitFor('lost the lock; stopping', wokenAt);
      const aStandbyAt = await a.waitFor('waiting as standby', wokenAt);

      // Only the new active one indexes.
      const batch = await newBatch();
      await anchorOnChain(chain, contract, batch);
      const included = receiptJobId(batch.batchId, 1, 'relay-a', 0, 1);
      await vi.waitFor(() => expect(jobs).toContain(included), WAIT);
      await b.waitFor('indexed BatchAnchored events');
      expect(
        a.logs.some((log) => log.at >= aStandbyAt && log.msg === 'indexed BatchAnchored events'),
      ).toBe(false);

      // Take the lock away from the active one (as an operator or a broken link would).
      const takenAt = Date.now();
      await sql`select pg_terminate_backend(pid) from pg_locks
      where locktype = 'advisory' and classid = ${LEADER_LOCK_CLASS} and granted`.execute(
        database.db,
      );
      await b.waitFor('lost the lock; stopping', takenAt);
      const activeAt = await a.waitFor('became active (epoch 3)', takenAt);
      console.log(`lock taken away: standby active after ${activeAt - takenAt} ms`);
      await b.waitFor('waiting as standby', takenAt);

      // SIGTERM: the active one releases the lock on the way out; the standby takes it at once.
      const stopAt = Date.now();
      a.child.kill('SIGTERM');
      const handedAt = await b.waitFor('became active (epoch 4)', stopAt);
      console.log(`SIGTERM of the active indexer: standby active after ${handedAt - stopAt} ms`);
      await vi.waitFor(() => expect(a.child.exitCode).not.toBe(null), WAIT);
      expect(a.child.exitCode, a.output().slice(-4000)).toBe(0);
      expect(jobs).toEqual([included]);
    },
    TEST_TIMEOUT,
  );
});
