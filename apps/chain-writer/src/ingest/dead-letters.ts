import type { Database } from '@streamanchor/db';
import type { Kysely } from 'kysely';

/** One item of a job the writer could not store. */
export interface DeadLetter {
  /** Position in the job (-1: the job as a whole). */
  itemIndex: number;
  recordId: string | null;
  reason: string;
  /** The item itself; stored as JSON text (JSON.stringify escapes U+0000 and lone surrogates). */
  item: unknown;
}

/** Longest `raw` kept (a larger item is cut; its reason says so). */
const MAX_RAW_CHARS = 1024 * 1024;

/**
 * Inserts dead letters for job `jobId` of `queue`, once: (queue, job_id, item_index) is
 * unique, so a retried job adds nothing. Returns the ones that are new.
 */
export async function insertDeadLetters(
  db: Kysely<Database>,
  queue: 'records' | 'audit',
  jobId: string,
  letters: readonly DeadLetter[],
): Promise<DeadLetter[]> {
  if (letters.length === 0) return [];
  const fresh: DeadLetter[] = [];
  for (let start = 0; start < letters.length; start += 1000) {
    const chunk = letters.slice(start, start + 1000);
    const inserted = await db
      .insertInto('dead_letters')
      .values(
        chunk.map((letter) => {
          let raw = safeJson(letter.item);
          if (raw.length > MAX_RAW_CHARS) raw = raw.slice(0, MAX_RAW_CHARS);
          return {
            queue,
            job_id: jobId,
            item_index: letter.itemIndex,
            record_id: letter.recordId,
            reason: storableText(letter.reason).slice(0, 2000),
            raw,
          };
        }),
      )
      .onConflict((conflict) => conflict.columns(['queue', 'job_id', 'item_index']).doNothing())
      .returning('item_index')
      .execute();
    const indexes = new Set(inserted.map((row) => row.item_index));
    fresh.push(...chunk.filter((letter) => indexes.has(letter.itemIndex)));
  }
  return fresh;
}

/** `text` with U+0000 and lone surrogates written as \\u escapes (so Postgres can store it). */
export function storableText(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: U+0000 is what Postgres refuses.
    /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch (error) {
    return `unserializable: ${(error as Error).message}`;
  }
}

/**
 * Whether a database error is about the data (SQLSTATE class 22 data exception, 23 integrity
 * constraint, 54 program limit): retrying the same rows can never succeed, so the writer
 * isolates them. Any other error (connection, timeout) is retried by BullMQ as a whole.
 */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}
