import type { Database, NewRecordRow } from '@streamanchor/db';
import type { AcceptedRecord } from '@streamanchor/protocol';
import type { Kysely } from 'kysely';

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
