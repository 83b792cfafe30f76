import type { Database, NewRecordRow } from '@streamanchor/db';
import type { AcceptedRecord } from '@streamanchor/protocol';
import type { Kysely } from 'kysely';
import { type DeadLetter, insertDeadLetters, isDataError } from './dead-letters';
import { checkRecord } from './validate';

/** Rows per INSERT statement: 9 parameters a row stays far below Postgres' 65 535 limit. */
export const INSERT_CHUNK_ROWS = 2000;

/**
 * Stores records idempotently: one multi-row `INSERT … ON CONFLICT (record_id) DO NOTHING`
 * per chunk, so a retried or duplicated job never stores a record twice. Returns how many
 * rows were new.
 */
export async function storeRecords(
  db: Kysely<Database>,
  records: readonly AcceptedRecord[],
): Promise<number> {
  let stored = 0;
  for (let start = 0; start < records.length; start += INSERT_CHUNK_ROWS) {
    const rows: NewRecordRow[] = records.slice(start, start + INSERT_CHUNK_ROWS).map((record) => ({
      record_id: record.recordId,
      topic: record.topic,
      subject: record.subject,
      content_hash: record.contentHash,
      accepted_at: record.acceptedAt,
      payload: record.payload,
      relay_id: record.relayId,
      session_id: record.sessionId,
    }));
    const inserted = await db
      .insertInto('records')
      .values(rows)
      .onConflict((conflict) => conflict.column('record_id').doNothing())
      .returning('record_id')
      .execute();
    stored += inserted.length;
  }
  return stored;
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
}

/**
 * Stores one records job without letting a bad record hold the others hostage: each item is
 * checked first (`checkRecord`); the valid ones are inserted and the rest dead-lettered in
 * one transaction. If that insert still fails on its data (a reason the checks did not
 * foresee), the valid items are bisected, each half in its own transaction, until only the
 * failing records remain; those are dead-lettered with the database's message. Inserts are
 * idempotent, so halves that landed before a crash are harmless on retry. An error that is
 * not about the data (connection lost) is thrown: BullMQ retries the whole job.
 */
export async function storeJob(
  db: Kysely<Database>,
  jobId: string,
  items: readonly unknown[],
): Promise<StoreJobResult> {
  const valid: Item[] = [];
  const rejected: DeadLetter[] = [];
  items.forEach((item, index) => {
    const check = checkRecord(item);
    if (check.ok) valid.push({ index, record: check.record });
    else rejected.push({ itemIndex: index, recordId: check.recordId, reason: check.reason, item });
  });
  const result: StoreJobResult = { stored: 0, deadLetters: [], bisections: 0 };
  await storePart(db, jobId, valid, rejected, result);
  return result;
}

async function storePart(
  db: Kysely<Database>,
  jobId: string,
  valid: readonly Item[],
  rejected: readonly DeadLetter[],
  result: StoreJobResult,
): Promise<void> {
  try {
    const { stored, fresh } = await db.transaction().execute(async (trx) => ({
      stored: await storeRecords(
        trx,
        valid.map((item) => item.record),
      ),
      fresh: await insertDeadLetters(trx, 'records', jobId, rejected),
    }));
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
