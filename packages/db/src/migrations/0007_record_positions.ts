import { type Kysely, sql } from 'kysely';

/**
 * Subscribers read a topic's history by position: each record a relay accepts gets the next
 * position of its topic (1, 2, 3… in ack order, from the topic's Redis stream counter), and
 * the writer stores it with the record. `position` is null for records that have none
 * (stored before this migration, queued without positions, the audit's own records).
 *
 * `records_topic_position` serves "a topic's records after position N, in order" and "a
 * topic's head". It is partial (most rows' positions may be null: a B-tree indexes NULLs) and
 * NOT unique: positions are unique per topic only while Redis keeps its streams, and a Redis
 * restart without persistence starts a topic's counter again at 1. A unique index would then
 * make the writer's inserts fail, and those records would be dead-lettered instead of stored;
 * a repeated position is better than a lost record.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('records').addColumn('position', 'bigint').execute();
  await sql`create index records_topic_position on records (topic, position) where position is not null`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists records_topic_position`.execute(db);
  await db.schema.alterTable('records').dropColumn('position').execute();
}
