#!/bin/bash
# WAL bytes per record for storing records and batching them, with the tables as each migration
# left them, alternated twice. 100,000 records of 200-byte payloads, batched 2,000 at a time.
# Variants (arguments; default: 0009 0010):
#   0005  before 0006_records_index_writes (unique index on seq, records_batch not partial)
#   0006  after it
#   0007  after 0007_record_positions: each record inserted with its topic position, and
#         indexed in records_topic_position (at the insert and again at the batch stamp,
#         which is not HOT)
#   0009  the records table before 0010_batch_leaves (0007's, which 0008 and 0009 left as it
#         was), modelled as the services run it: a `batches` row per batch that records.batch_id
#         references (foreign key), 66-character batch ids and leaf hashes, then the stamp
#         UPDATE of the batch's records
#   0010  after 0010_batch_leaves: records written once (indexes: key, seq, topic position;
#         the trigger records_assign_xid), each batch a `batches` row and one batch_leaves row
#         per record (primary key, unique record_seq, foreign key to batches.seq), plus the
#         batcher's frontier update per batch
# 0005–0007 keep their first form (short batch ids 'batch-N', 34-character leaf hashes, no
# batches table), so their figures are the ones the README quotes; compare 0009 with 0010.
# Needs psql and a local Postgres (PGHOST 127.0.0.1, user postgres); makes and drops the
# database sa_walbench.
# Run: bash packages/db/bench/records-wal.sh [variant…], e.g. 0005 0006 for migration 0006.
DB=sa_walbench
if [ $# -gt 0 ]; then VARIANTS=("$@"); else VARIANTS=(0009 0010); fi
psql -h 127.0.0.1 -U postgres -qc "drop database if exists $DB" -c "create database $DB" >/dev/null
schema() {
  case $1 in
    0005) echo "alter table records add constraint records_seq_key unique (seq);
                create index records_batch on records (batch_id, leaf_index);" ;;
    0006) echo "create index records_batch on records (batch_id, leaf_index) where batch_id is not null;" ;;
    0007|0009) echo "create index records_batch on records (batch_id, leaf_index) where batch_id is not null;
                create index records_topic_position on records (topic, position) where position is not null;" ;;
    0010) echo "create index records_seq on records (seq);
                create index records_topic_position on records (topic, position) where position is not null;
                create function records_assign_xid() returns trigger language plpgsql as
                  'begin perform pg_current_xact_id(); return null; end';
                create trigger records_assign_xid before insert on records
                  for each statement execute function records_assign_xid();
                create table batch_leaves (batch_seq bigint not null references batches (seq),
                  leaf_index integer not null check (leaf_index >= 0), record_seq bigint not null,
                  leaf_hash text not null, primary key (batch_seq, leaf_index),
                  constraint batch_leaves_record unique (record_seq));
                create table batch_frontier (id boolean primary key default true check (id),
                  frontier_seq bigint not null, horizon_seq bigint not null, horizon_xid xid8 not null);
                insert into batch_frontier values (true, 0, 0, '0');" ;;
    *) echo "unknown variant $1" >&2; exit 1 ;;
  esac
}
# The statements that batch records seq b*2000+1 … (b+1)*2000 as batch number b.
batch() {
  local batch_id="'0x' || md5('b' || b) || md5('c' || b)"
  local leaf_hash="'0x' || md5(record_id) || md5(seq::text)"
  case $1 in
    0005|0006|0007) echo "
      update records set batch_id = 'batch-' || b, leaf_index = seq - b * 2000 - 1, leaf_hash = '0x' || md5(record_id)
       where seq > b * 2000 and seq <= (b + 1) * 2000 and batch_id is null;" ;;
    0009) echo "
      insert into batches (batch_id, status, merkle_root, record_count, chain_id, contract)
        values ($batch_id, 'built', '0x' || md5('r' || b) || md5('s' || b), 2000, 31337, '0x' || repeat('ab', 20));
      update records set batch_id = $batch_id, leaf_index = seq - b * 2000 - 1, leaf_hash = $leaf_hash
       where seq > b * 2000 and seq <= (b + 1) * 2000 and batch_id is null;" ;;
    0010) echo "
      update batch_frontier set frontier_seq = greatest(frontier_seq, b * 2000), horizon_seq = 100000,
             horizon_xid = pg_current_xact_id();
      insert into batches (batch_id, status, merkle_root, record_count, chain_id, contract)
        values ($batch_id, 'built', '0x' || md5('r' || b) || md5('s' || b), 2000, 31337, '0x' || repeat('ab', 20))
        returning seq into batch_seq;
      insert into batch_leaves (batch_seq, leaf_index, record_seq, leaf_hash)
        select batch_seq, seq - b * 2000 - 1, seq, $leaf_hash
          from records where seq > b * 2000 and seq <= (b + 1) * 2000;" ;;
  esac
}
run() {
  local variant=$1
  # 0007's records (and later ones) carry their position (1, 2, 3… in the one topic).
  local column='' value='' position='' batch_columns='batch_id text, leaf_index integer, leaf_hash text,'
  local batches='' unbatched='create index records_unbatched on records (seq) where batch_id is null;'
  case $variant in 0007|0009|0010) column=', position' value=', i' position=', position bigint' ;; esac
  case $variant in 0009|0010) batches="create table batches (batch_id text primary key,
      seq bigint generated always as identity not null unique, status text not null,
      merkle_root text not null, record_count integer not null, chain_id integer not null,
      contract text not null, created_at timestamptz not null default now());" ;; esac
  [ "$variant" = 0009 ] && batch_columns='batch_id text references batches (batch_id), leaf_index integer, leaf_hash text,'
  [ "$variant" = 0010 ] && batch_columns='' unbatched=''
  local ddl stamp
  ddl=$(schema "$variant") || exit 1
  stamp=$(batch "$variant")
  psql -h 127.0.0.1 -U postgres -d $DB -qAt <<SQL
drop table if exists batch_frontier, batch_leaves, records, batches cascade;
drop function if exists records_assign_xid() cascade;
$batches
create table records (
  record_id text primary key,
  seq bigint generated always as identity not null,
  topic text not null, subject text not null, content_hash text not null, accepted_at bigint not null,
  payload text, relay_id text not null, session_id text not null,
  $batch_columns stored_at timestamptz not null default now()
  $position);
$unbatched
$ddl
checkpoint;
select pg_current_wal_lsn() as start \gset
insert into records (record_id, topic, subject, content_hash, accepted_at, payload, relay_id, session_id$column)
  select '0x' || md5(i::text) || md5((i+1)::text), 'demo', 'pub-0', '0x' || md5(i::text) || md5(i::text), 1764000000000 + i,
         '{"at":1764000000000,"fill":"' || repeat('x', 157) || '","n":' || i || '}', 'relay-1', 'AAAAAAAAAAAAAAAAAAAAAA'$value
  from generate_series(1, 100000) i;
select pg_current_wal_lsn() as stored \gset
do \$\$ declare batch_seq bigint; begin for b in 0..49 loop
  $stamp
end loop; end \$\$;
select '$variant', round(pg_wal_lsn_diff(pg_current_wal_lsn(), :'start') / 100000.0) as wal_bytes_per_record,
       round(pg_wal_lsn_diff(:'stored', :'start') / 100000.0) as of_which_insert,
       round(pg_wal_lsn_diff(pg_current_wal_lsn(), :'stored') / 100000.0) as of_which_batching;
SQL
}
echo 'variant|wal_bytes_per_record|of_which_insert|of_which_batching'
for round in 1 2; do for variant in "${VARIANTS[@]}"; do run "$variant"; done; done
psql -h 127.0.0.1 -U postgres -qc "drop database $DB" >/dev/null
