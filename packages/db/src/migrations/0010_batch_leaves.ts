import { type Kysely, sql } from 'kysely';

/**
 * A record row is written once: batch membership moves out of `records` into the insert-only
 * `batch_leaves`. Until now every record took two full row versions, its insert and then the
 * batch stamp (`UPDATE records SET batch_id, leaf_index, leaf_hash`), which could not be HOT
 * because `batch_id` is indexed: about half of the records table's WAL.
 *
 * - `batch_leaves (batch_seq, leaf_index, record_seq, leaf_hash)`: one row per batched record,
 *   written by the ledger's `createBatch` in the transaction that inserts the batch, and never
 *   changed. Keyed by the batch's and the record's `seq` (bigint) rather than their 66-character
 *   ids, so a leaf row and its two index entries stay small. Primary key (batch_seq, leaf_index):
 *   a batch's leaves in leaf order, each index once. Unique (record_seq): a record is in at most
 *   one batch. No foreign key to records: checking it would lock (and so write) the record row.
 * - `records` loses `batch_id`, `leaf_index`, `leaf_hash` and their indexes (`records_unbatched`,
 *   `records_batch`), and gains a plain index on `seq` (one entry per record, at its insert).
 *   The columns are dropped rather than left unused: a writer of an older version still
 *   running would otherwise stamp them and its records would be batched a second time; with
 *   them gone its stamp fails and rolls back. Readers that want a record with its batch use
 *   the view `record_leaves` (records left-joined to their leaf and batch).
 * - `batch_frontier`: the batcher's queue without an index maintained by updates. Records in
 *   no batch are found by an anti-join of records against batch_leaves over `seq` above
 *   `frontier_seq`, below which every record is batched. Batches take records in `seq` order,
 *   but a record may commit after records with a higher `seq` were batched (its insert
 *   transaction was still open), so the frontier only passes a `seq` once no transaction can
 *   still add a record at or below it: `horizon_seq` was the sequence's last value when
 *   `horizon_xid` was assigned (after), and once every transaction older than `horizon_xid`
 *   has ended (`pg_snapshot_xmin`), every record up to `horizon_seq` is visible or never will
 *   be. Moved only by the ledger's batch-frontier code, under the batch cut lock.
 * - The trigger `records_assign_xid` gives every transaction that inserts records its
 *   transaction id before the insert draws its first `seq`, so that a transaction holding a
 *   `seq` always has an xid older than any horizon taken after it drew it. The `seq` sequence
 *   is pinned to CACHE 1 (the identity default, made explicit): with a larger cache a backend
 *   could hand out a value below the horizon after the horizon was taken.
 *
 * Existing stamps are copied as they are (leaf order and hashes unchanged); the frontier
 * starts below the lowest unstamped record. `records` is locked first, so no insert or stamp
 * of another transaction is in flight while this runs; `batches` before it, in the order a
 * batch cut takes them (insert the batch, then stamp its records), and in the mode the new
 * foreign key needs, so that the migration cannot deadlock with a cut of an older writer.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await lockTables(db);

  await sql`create table batch_leaves (
    batch_seq bigint not null,
    leaf_index integer not null check (leaf_index >= 0),
    record_seq bigint not null,
    leaf_hash text not null
  )`.execute(db);
  await sql`insert into batch_leaves (batch_seq, leaf_index, record_seq, leaf_hash)
    select b.seq, r.leaf_index, r.seq, r.leaf_hash
      from records r join batches b on b.batch_id = r.batch_id
     where r.batch_id is not null
     order by b.seq, r.leaf_index`.execute(db);
  // Indexes after the copy: one sort each instead of an insert per row.
  await sql`alter table batch_leaves
    add constraint batch_leaves_pkey primary key (batch_seq, leaf_index),
    add constraint batch_leaves_record unique (record_seq),
    add constraint batch_leaves_batch foreign key (batch_seq) references batches (seq)`.execute(db);

  await sql`create table batch_frontier (
    id boolean primary key default true check (id),
    frontier_seq bigint not null,
    horizon_seq bigint not null,
    horizon_xid xid8 not null
  )`.execute(db);
  // Nothing is in flight (the lock): every record below the lowest unstamped one is batched.
  // The horizon (0, xid 0) is settled and passes nothing: the first move sets a real one.
  await sql`insert into batch_frontier (frontier_seq, horizon_seq, horizon_xid)
    select coalesce((select min(seq) - 1 from records where batch_id is null),
                    (select max(seq) from records), 0),
           0, '0'::xid8`.execute(db);

  await sql`alter table records drop column batch_id, drop column leaf_index, drop column leaf_hash`.execute(
    db,
  );
  await sql`create index records_seq on records (seq)`.execute(db);
  await sql`alter table records alter column seq set cache 1`.execute(db);

  await sql`create function records_assign_xid() returns trigger language plpgsql as $$
    begin
      perform pg_current_xact_id();
      return null;
    end $$`.execute(db);
  await sql`create trigger records_assign_xid before insert on records
    for each statement execute function records_assign_xid()`.execute(db);

  await sql`create view record_leaves as
    select r.record_id, r.seq, r.topic, r.subject, r.content_hash, r.accepted_at, r.payload,
           r.relay_id, r.session_id, r.stored_at, r.position,
           b.batch_id, l.leaf_index, l.leaf_hash
      from records r
      left join batch_leaves l on l.record_seq = r.seq
      left join batches b on b.seq = l.batch_seq`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await lockTables(db);
  await sql`drop view if exists record_leaves`.execute(db);
  await sql`drop trigger if exists records_assign_xid on records`.execute(db);
  await sql`drop function if exists records_assign_xid()`.execute(db);
  await sql`alter table records
    add column batch_id text references batches (batch_id),
    add column leaf_index integer,
    add column leaf_hash text`.execute(db);
  await sql`update records as r
       set batch_id = b.batch_id, leaf_index = l.leaf_index, leaf_hash = l.leaf_hash
      from batch_leaves l join batches b on b.seq = l.batch_seq
     where l.record_seq = r.seq`.execute(db);
  await sql`drop index if exists records_seq`.execute(db);
  await sql`create index records_unbatched on records (seq) where batch_id is null`.execute(db);
  await sql`create index records_batch on records (batch_id, leaf_index) where batch_id is not null`.execute(
    db,
  );
  await sql`drop table if exists batch_frontier`.execute(db);
  await sql`drop table if exists batch_leaves`.execute(db);
}

async function lockTables(db: Kysely<unknown>): Promise<void> {
  await sql`lock table batches in share row exclusive mode`.execute(db);
  await sql`lock table records in access exclusive mode`.execute(db);
}
