import { hostname } from 'node:os';
import type { Database } from '@streamanchor/db';
import type { Logger } from '@streamanchor/service-kit';
import { type Kysely, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { IndexerError } from '../errors';

/**
 * One active indexer per chain and contract, any number of standbys.
 *
 * The lock: a Postgres **session-level advisory lock** (`pg_advisory_lock`) held on a
 * dedicated connection, not a Redis lease. Postgres releases it itself the moment the
 * holder's connection drops (kill -9, crash, clean stop), so a standby blocked in
 * `pg_advisory_lock` is granted it at once: no TTL to wait out in the common case. For the
 * cases where the connection does not drop (holder host gone without a FIN, frozen process,
 * network cut) the lock session runs with `idle_session_timeout = INDEXER_LEASE_MS`: the
 * holder heartbeats every lease/5, so Postgres ends a silent holder's session (and its lock)
 * after the lease. And the lock lives where the data lives: Postgres unreachable means no
 * writes anyway, while a Redis lease could be held by an indexer cut off from Postgres.
 *
 * Fencing: whoever is granted the lock bumps `indexer_leaders.epoch` **on the lock
 * connection** (so only a live holder can bump), and every write transaction of the active
 * indexer (the syncer's commit and rewind) starts with `fence(tx)`: the epoch row FOR SHARE
 * must still carry its epoch, else FencedError and the transaction rolls back. A stale
 * indexer (lock lost, not noticed yet) therefore cannot commit once the new one is active, and
 * the new one's bump waits for any stale transaction still in flight (which `SET LOCAL
 * idle_in_transaction_session_timeout` bounds by the lease). The holder also stops itself
 * when its lock connection ends or its heartbeat goes unanswered for half the lease.
 *
 * PGlite is embedded in one process (two processes must never open its folder): there is no
 * standby on PGlite. The election there bumps the epoch and is active at once.
 */

/** The advisory lock's first key ('SAIX'); the second is hashtext('<chainId>:<contract>'). */
export const LEADER_LOCK_CLASS = 0x53414958;

/** The lock connection's application_name (visible in pg_stat_activity). */
export const LEADER_APPLICATION_NAME = 'chain-indexer-leader';

/** A write transaction of a stale active indexer: another one has taken over. */
export class FencedError extends IndexerError {
  override name = 'FencedError';
  constructor(epoch: bigint, current: string | undefined) {
    super('another indexer took over (leader epoch moved); this write is rejected', {
      epoch: epoch.toString(),
      current: current ?? null,
    });
  }
}

/** Runs first in each write transaction of the active indexer; throws FencedError when stale. */
export type Fence = (tx: Transaction<Database>) => Promise<void>;

/** One period of being active. */
export interface Term {
  epoch: bigint;
  fence: Fence;
  /** Resolves (never rejects) with a reason once the lock is lost. */
  readonly lost: Promise<string>;
  /** Lets the lock go (a waiting standby is granted it at once). */
  release(): Promise<void>;
}

export interface LeaderElectionDeps {
  db: Kysely<Database>;
  /** The Postgres URL; undefined on PGlite (no lock, no standby). */
  databaseUrl: string | undefined;
  chainId: number;
  /** Lowercase contract address. */
  contract: string;
  leaseMs: number;
  logger: Logger;
  /** Written to indexer_leaders.holder; default `<hostname>:<pid>`. */
  holder?: string;
}

export interface LeaderElection {
  /**
   * Waits as standby until this process holds the lock, then bumps the epoch. Rejects with
   * the signal's reason once it is aborted.
   */
  acquire(signal: AbortSignal): Promise<Term>;
}

const LOCK_NOT_AVAILABLE = '55P03';

export function createLeaderElection(deps: LeaderElectionDeps): LeaderElection {
  const { db, databaseUrl, chainId, contract, leaseMs, logger } = deps;
  const holder = deps.holder ?? `${hostname()}:${process.pid}`;
  const lockName = `${chainId}:${contract}`;
  /** Heartbeat period of the holder. */
  const beatMs = Math.max(100, Math.floor(leaseMs / 5));

  function fenceFor(epoch: bigint, onFenced: (reason: string) => void): Fence {
    return async (tx) => {
      // A stale holder's transaction left idle (process frozen, cut off) must not keep the
      // epoch row locked past the lease: the new holder's bump waits for it.
      if (databaseUrl)
        await sql`set local idle_in_transaction_session_timeout = ${sql.lit(leaseMs)}`.execute(tx);
      const row = await tx
        .selectFrom('indexer_leaders')
        .select('epoch')
        .where('chain_id', '=', chainId)
        .where('contract', '=', contract)
        .forShare()
        .executeTakeFirst();
      if (!row || BigInt(row.epoch) !== epoch) {
        onFenced(`fenced: leader epoch is ${row?.epoch ?? 'gone'}, ours ${epoch}`);
        throw new FencedError(epoch, row ? String(row.epoch) : undefined);
      }
    };
  }

  /** The epoch bump, on the lock connection (so only a live holder bumps). */
  const BUMP = `insert into indexer_leaders (chain_id, contract, epoch, holder, acquired_at)
    values ($1, $2, 1, $3, now())
    on conflict (chain_id, contract) do update
      set epoch = indexer_leaders.epoch + 1, holder = excluded.holder, acquired_at = now()
    returning epoch::text as epoch`;

  async function acquirePglite(): Promise<Term> {
    const row = await db
      .insertInto('indexer_leaders')
      .values({ chain_id: chainId, contract, epoch: 1, holder })
      .onConflict((oc) =>
        oc.columns(['chain_id', 'contract']).doUpdateSet({
          epoch: sql`indexer_leaders.epoch + 1`,
          holder,
          acquired_at: sql`now()`,
        }),
      )
      .returning('epoch')
      .executeTakeFirstOrThrow();
    const epoch = BigInt(row.epoch);
    logger.info('PGlite is embedded in this one process: no standby, active at once');
    return {
      epoch,
      fence: fenceFor(epoch, () => {}),
      lost: new Promise<string>(() => {}),
      release: async () => {},
    };
  }

  async function acquirePostgres(url: string, signal: AbortSignal): Promise<Term> {
    let saidStandby = false;
    for (;;) {
      signal.throwIfAborted();
      const client = new pg.Client({
        connectionString: url,
        application_name: LEADER_APPLICATION_NAME,
        keepAlive: true,
      });
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        void client.end().catch(() => {});
      };
      const failures: Error[] = [];
      client.on('error', (error) => failures.push(error));
      const onAbort = () => close();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await client.connect();
        // A silent holder's session ends after the lease (see above); a standby's wait is
        // re-issued every lease, which also notices a dead standby connection.
        await client.query(
          `select set_config('idle_session_timeout', $1, false),
                  set_config('lock_timeout', $1, false)`,
          [`${leaseMs}ms`],
        );
        const tried = await client.query<{ ok: boolean }>(
          'select pg_try_advisory_lock($1, hashtext($2)) as ok',
          [LEADER_LOCK_CLASS, lockName],
        );
        if (!tried.rows[0]?.ok) {
          if (!saidStandby) {
            logger.info({ leaseMs, holder }, 'waiting as standby');
            saidStandby = true;
          }
          for (;;) {
            try {
              // Granted the moment the holder's session ends or unlocks.
              await client.query('select pg_advisory_lock($1, hashtext($2))', [
                LEADER_LOCK_CLASS,
                lockName,
              ]);
              break;
            } catch (error) {
              if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw error;
            }
          }
        }
        const bumped = await client.query<{ epoch: string }>(BUMP, [chainId, contract, holder]);
        signal.removeEventListener('abort', onAbort);
        return holding(client, close, failures, BigInt(bumped.rows[0]!.epoch));
      } catch (error) {
        signal.removeEventListener('abort', onAbort);
        close();
        signal.throwIfAborted();
        logger.warn(
          { err: failures[0] ?? error },
          'leader lock connection failed; retrying as standby',
        );
        await sleep(Math.min(leaseMs, 1000), signal);
      }
    }
  }

  function holding(client: pg.Client, close: () => void, failures: Error[], epoch: bigint): Term {
    let resolveLost!: (reason: string) => void;
    const lost = new Promise<string>((resolve) => {
      resolveLost = resolve;
    });
    let done = false;
    let lastAnswer = Date.now();
    let beating = false;
    const lose = (reason: string) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      close();
      resolveLost(reason);
    };
    if (failures.length > 0) queueMicrotask(() => lose(`lock connection failed: ${failures[0]}`));
    client.on('error', (error) => lose(`lock connection failed: ${error.message}`));
    client.on('end', () => lose('lock connection closed'));
    const timer = setInterval(() => {
      // Stop before Postgres would end a silent session (idle_session_timeout = lease).
      if (Date.now() - lastAnswer > leaseMs / 2) {
        lose(`no heartbeat answer for ${Date.now() - lastAnswer} ms`);
        return;
      }
      if (beating) return;
      beating = true;
      client.query('select 1').then(
        () => {
          lastAnswer = Date.now();
          beating = false;
        },
        (error: Error) => lose(`heartbeat failed: ${error.message}`),
      );
    }, beatMs);
    timer.unref();
    return {
      epoch,
      fence: fenceFor(epoch, lose),
      lost,
      async release() {
        if (done) return;
        done = true;
        clearInterval(timer);
        resolveLost('released');
        // Closing the session releases its advisory locks.
        await client.end().catch(() => {});
      },
    };
  }

  return {
    acquire(signal) {
      return databaseUrl ? acquirePostgres(databaseUrl, signal) : acquirePglite();
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
