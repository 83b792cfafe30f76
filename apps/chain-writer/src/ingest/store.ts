import type { Database, NewRecordRow } from '@streamanchor/db';
import type { AcceptedRecord } from '@streamanchor/protocol';
import { type Kysely, sql } from 'kysely';
import { type DeadLetter, insertDeadLetters, isDataError } from './dead-letters';
import { checkRecord } from './validate';

/**
 * Rows per INSERT statement. The rows travel as ONE jsonb parameter (`jsonb_to_recordset`),
 * so the statement's text and its parameter count stay the same whatever the number of rows
 * (no 65 535-parameter limit, nothing for Kysely to compile per row); this only bounds one
 * statement's size.
 */
export const INSERT_CHUNK_ROWS = 5000;

/**
 * Stores records idempotently: one `INSERT … SELECT FROM jsonb_to_recordset($1) ON CONFLICT
 * (record_id) DO NOTHING` per chunk, so a retried or duplicated job never stores a record
 * twice (a record twice in one call is stored once, with its first position). `positions[i]`
 * is record i's position in its topic (none: null). Returns the recordIds that were new.
 */
export async function insertRecords(
  db: Kysely<Database>,
  records: readonly AcceptedRecord[],
  positions: readonly (number | null)[] = [],
): Promise<string[]> {
  const fresh: string[] = [];
  for (let start = 0; start < records.length; start += INSERT_CHUNK_ROWS) {
    const rows = JSON.stringify(
      records.slice(start, start + INSERT_CHUNK_ROWS).map(
        (record, i): NewRecordRow => ({
          record_id: record.recordId,
          topic: record.topic,
          subject: record.subject,
          content_hash: record.contentHash,
          accepted_at: record.acceptedAt,
          payload: record.payload,
          relay_id: record.relayId,
          session_id: record.sessionId,
          // Left out of the JSON when there is none: jsonb_to_recordset reads it as null.
          position: positions[start + i] ?? undefined,
        }),
      ),
    );
    const { rows: inserted } = await sql<{ record_id: string }>`
      insert into records (record_id, topic, subject, content_hash, accepted_at, payload, relay_id, session_id, position)
      select record_id, topic, subject, content_hash, accepted_at, payload, relay_id, session_id, position
        from jsonb_to_recordset(${rows}::jsonb) as v(record_id text, topic text, subject text,
             content_hash text, accepted_at bigint, payload text, relay_id text, session_id text,
             position bigint)
      on conflict (record_id) do nothing
      returning record_id`.execute(db);
    for (const row of inserted) fresh.push(row.record_id);
  }
  return fresh;
}

/** `insertRecords`, counting the new rows. */
export async function storeRecords(
  db: Kysely<Database>,
  records: readonly AcceptedRecord[],
  positions?: readonly (number | null)[],
): Promise<number> {
  return (await insertRecords(db, records, positions)).length;
}

export interface StoreJobResult {
  /** Records that were new (duplicates of stored ones are not counted). */
  stored: number;
  /** Dead letters this call wrote (none again when a job is retried). */
  deadLetters: DeadLetter[];
  /** Inserts that failed on their data and were split in halves (0 on the normal path). */
  bisections: number;
}

interface Item {
  index: number;
  record: AcceptedRecord;
  /** Its position in its topic (the job's positions at `index`), or null. */
  position: number | null;
}

/**
 * Stores one records job without letting a bad record hold the others hostage: each item is
 * checked first (`checkRecord`); the valid ones are inserted (item i at `positions[i]`, if
 * given) and the rest dead-lettered in one transaction. If that insert still fails on its
 * data (a reason the checks did not foresee), the valid items are bisected, each half in its
 * own transaction, until only the failing records remain; those are dead-lettered with the
 * database's message. Inserts are idempotent, so halves that landed before a crash are
 * harmless on retry. An error that is not about the data (connection lost) is thrown:
 * BullMQ retries the whole job.
 */
export async function storeJob(
  db: Kysely<Database>,
  jobId: string,
  items: readonly unknown[],
  positions?: readonly number[],
): Promise<StoreJobResult> {
  const valid: Item[] = [];
  const rejected: DeadLetter[] = [];
  items.forEach((item, index) => {
    const check = checkRecord(item);
    if (check.ok) valid.push({ index, record: check.record, position: positions?.[index] ?? null });
    else rejected.push({ itemIndex: index, recordId: check.recordId, reason: check.reason, item });
  });
  const result: StoreJobResult = { stored: 0, deadLetters: [], bisections: 0 };
  await storePart(db, jobId, valid, rejected, result);
  return result;
}

/**
 * Runs `work` in a transaction, or straight on `db` when the caller knows it is one
 * statement (one INSERT, no dead letters): a statement is atomic on its own, and BEGIN and
 * COMMIT would be two more round trips per stored group.
 */
function atomically<T>(
  db: Kysely<Database>,
  oneStatement: boolean,
  work: (db: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return oneStatement ? work(db) : db.transaction().execute(work);
}

async function storePart(
  db: Kysely<Database>,
  jobId: string,
  valid: readonly Item[],
  rejected: readonly DeadLetter[],
  result: StoreJobResult,
): Promise<void> {
  try {
    const { stored, fresh } = await atomically(
      db,
      rejected.length === 0 && valid.length <= INSERT_CHUNK_ROWS,
      async (trx) => ({
        stored: await storeRecords(
          trx,
          valid.map((item) => item.record),
          valid.map((item) => item.position),
        ),
        fresh: await insertDeadLetters(trx, 'records', jobId, rejected),
      }),
    );
    result.stored += stored;
    result.deadLetters.push(...fresh);
  } catch (error) {
    if (!isDataError(error) || valid.length === 0) throw error;
    if (valid.length === 1) {
      const [item] = valid as [Item];
      const reason = `insert failed: ${(error as { code?: string }).code} ${(error as Error).message}`;
      await storePart(
        db,
        jobId,
        [],
        [
          ...rejected,
          { itemIndex: item.index, recordId: item.record.recordId, reason, item: item.record },
        ],
        result,
      );
      return;
    }
    result.bisections += 1;
    const half = Math.ceil(valid.length / 2);
    await storePart(db, jobId, valid.slice(0, half), rejected, result);
    await storePart(db, jobId, valid.slice(half), [], result);
  }
}

/** One job of a group: its id and its items (a RecordBatchJob's `records`). */
export interface GroupJob {
  jobId: string;
  items: readonly unknown[];
  /** Each item's position in its topic, by index (as many as items); none: all null. */
  positions?: readonly number[] | undefined;
}

/**
 * Stores several jobs in ONE transaction (the group commit of the ingest worker): every
 * valid record of every job in one insert, each job's dead letters beside them, one commit.
 * Results are per job, in order; a record new to the database counts for (and takes the
 * position given by) the first job of the group that holds it. If the group's insert fails on its data, each job is stored on
 * its own (`storeJob`, which isolates the failing records), so one poisoned job never holds
 * the others of its group hostage. Any other error is thrown: every job of the group fails
 * and BullMQ retries each (inserts are idempotent, and nothing of the group was committed).
 */
export async function storeJobs(
  db: Kysely<Database>,
  jobs: readonly GroupJob[],
): Promise<StoreJobResult[]> {
  if (jobs.length === 1) {
    const [job] = jobs as [GroupJob];
    return [await storeJob(db, job.jobId, job.items, job.positions)];
  }
  const valid: AcceptedRecord[] = [];
  const positions: (number | null)[] = [];
  const checked = jobs.map(({ items, positions: jobPositions }) => {
    const jobValid: AcceptedRecord[] = [];
    const rejected: DeadLetter[] = [];
    items.forEach((item, index) => {
      const check = checkRecord(item);
      if (check.ok) {
        jobValid.push(check.record);
        valid.push(check.record);
        positions.push(jobPositions?.[index] ?? null);
      } else
        rejected.push({ itemIndex: index, recordId: check.recordId, reason: check.reason, item });
    });
    return { valid: jobValid, rejected };
  });
  const oneStatement =
    checked.every((job) => job.rejected.length === 0) && valid.length <= INSERT_CHUNK_ROWS;
  try {
    return await atomically(db, oneStatement, async (trx) => {
      const fresh = new Set(await insertRecords(trx, valid, positions));
      const results: StoreJobResult[] = [];
      for (const [i, job] of checked.entries()) {
        let stored = 0;
        for (const record of job.valid) {
          if (fresh.delete(record.recordId)) stored += 1;
        }
        const deadLetters = await insertDeadLetters(trx, 'records', jobs[i]!.jobId, job.rejected);
        results.push({ stored, deadLetters, bisections: 0 });
      }
      return results;
    });
  } catch (error) {
    if (!isDataError(error)) throw error;
    const results: StoreJobResult[] = [];
    for (const job of jobs) {
      results.push(await storeJob(db, job.jobId, job.items, job.positions));
    }
    return results;
  }
}
