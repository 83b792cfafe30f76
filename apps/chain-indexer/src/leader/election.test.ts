import { type DatabaseHandle, migrateToLatest, openDatabase } from '@streamanchor/db';
import { createLogger } from '@streamanchor/service-kit';
import { createThrowawayPostgres, type ThrowawayPostgres } from '@streamanchor/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commitBlocks, readCursor } from '../sync/store';
import { randomHex32 } from '../test-fixtures';
import { createLeaderElection, FencedError, LEADER_LOCK_CLASS } from './election';

const key = { chainId: 31337, contract: '0x00000000000000000000000000000000000000aa' };
const scope = { ...key, finalityDepth: 3 };
const logger = createLogger({ service: 'leader-test', level: 'silent' });

describe('leader election (Postgres advisory lock + epoch fence)', () => {
  let postgres: ThrowawayPostgres;
  let database: DatabaseHandle;
  let abort: AbortController;

  beforeEach(async () => {
    postgres = await createThrowawayPostgres('leader');
    database = await openDatabase({ databaseUrl: postgres.url, pgliteDir: 'unused', poolSize: 4 });
    await migrateToLatest(database.db);
    abort = new AbortController();
  });

  afterEach(async () => {
    abort.abort(new Error('test over'));
    await database.close();
    await postgres.drop();
  });

  const election = (holder: string) =>
    createLeaderElection({
      db: database.db,
      databaseUrl: postgres.url,
      ...key,
      leaseMs: 2000,
      logger,
      holder,
    });

  /** Commits an empty step moving the cursor to `block`. */
  const commit = (block: bigint, fence: Parameters<typeof commitBlocks>[4]) =>
    readCursor(database.db, key).then((previous) =>
      commitBlocks(
        database.db,
        key,
        scope,
        {
          events: [],
          headers: [],
          previous: previous ?? { blockNumber: 0n, blockHash: null },
          next: { blockNumber: block, blockHash: randomHex32() },
          head: block,
          pruneAtOrBelow: 0n,
        },
        fence,
      ),
    );

  it("error: a stale active indexer's writes are rejected once its lock is taken away; a clean release hands over at once", async () => {
    const one = await election('one').acquire(abort.signal);
    expect(one.epoch).toBe(1n);
    await commit(5n, one.fence);

    // The standby blocks in pg_advisory_lock.
    const waiting = election('two').acquire(abort.signal);
    let granted = false;
    void waiting.then(() => {
      granted = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(granted).toBe(false);

    // Take the lock away without the holder's consent (as a partition or an operator would).
    const started = Date.now();
    await sql`select pg_terminate_backend(pid) from pg_locks
      where locktype = 'advisory' and classid = ${LEADER_LOCK_CLASS} and granted`.execute(
      database.db,
    );
    const two = await waiting;
    console.log(`lock taken away: standby active after ${Date.now() - started} ms`);
    expect(two.epoch).toBe(2n);
    expect(await one.lost).toMatch(/lock connection/);

    // The stale holder's write is rejected and changes nothing; the new holder's goes in.
    await expect(commit(9n, one.fence)).rejects.toBeInstanceOf(FencedError);
    expect((await readCursor(database.db, key))?.blockNumber).toBe(5n);
    await commit(9n, two.fence);
    expect((await readCursor(database.db, key))?.blockNumber).toBe(9n);

    // A clean release: the next standby is granted the lock at once (no lease to wait out).
    const next = election('three').acquire(abort.signal);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const released = Date.now();
    await two.release();
    const three = await next;
    console.log(`clean release: standby active after ${Date.now() - released} ms`);
    expect(three.epoch).toBe(3n);
    await expect(commit(10n, two.fence)).rejects.toBeInstanceOf(FencedError);
    await three.release();
  });

  it('behavior: on PGlite there is no lock: the election is active at once, the epoch still fences', async () => {
    const pglite = await openDatabase({ pgliteDir: 'memory://' });
    try {
      await migrateToLatest(pglite.db);
      const elect = () =>
        createLeaderElection({
          db: pglite.db,
          databaseUrl: undefined,
          ...key,
          leaseMs: 2000,
          logger,
        }).acquire(abort.signal);
      const first = await elect();
      const second = await elect();
      expect([first.epoch, second.epoch]).toEqual([1n, 2n]);
      await expect(pglite.db.transaction().execute((tx) => first.fence(tx))).rejects.toBeInstanceOf(
        FencedError,
      );
      await pglite.db.transaction().execute((tx) => second.fence(tx));
    } finally {
      await pglite.close();
    }
  });
});
