#!/bin/bash
# WAL bytes per record for insert + batch stamp, with the records table as each migration
# left it, alternated twice. Variants (arguments; default: 0006 0007):
#   0005  before 0006_records_index_writes (unique index on seq, records_batch not partial)
#   0006  after it
#   0007  after 0007_record_positions: each record inserted with its topic position, and
#         indexed in records_topic_position (at the insert and again at the batch stamp,
#         which is not HOT)
# Needs psql and a local Postgres (PGHOST 127.0.0.1, user postgres); makes and drops the
# database sa_walbench.
# Run: bash packages/db/bench/records-wal.sh [variant…], e.g. 0005 0006 for migration 0006.
DB=sa_walbench
if [ $# -gt 0 ]; then VARIANTS=("$@"); else VARIANTS=(0006 0007); fi
psql -h 127.0.0.1 -U postgres -qc "drop database if exists $DB" -c "create database $DB" >/dev/null
schema() {
  case $1 in
    0005) echo "alter table records add constraint records_seq_key unique (seq);
                create index records_batch on records (batch_id, leaf_index);" ;;
    0006) echo "create index records_batch on records (batch_id, leaf_index) where batch_id is not null;" ;;
    0007) echo "create index records_batch on records (batch_id, leaf_index) where batch_id is not null;
                create index records_topic_position on records (topic, position) where position is not null;" ;;
    *) echo "unknown variant $1" >&2; exit 1 ;;
  esac
}
run() {
  local variant=$1
  # 0007's records carry their position (1, 2, 3… in the one topic); before it, no column.
  local column='' value=''
  [ "$variant" = 0007 ] && column=', position' value=', i'
  local ddl
  ddl=$(schema "$variant") || exit 1
  psql -h 127.0.0.1 -U postgres -d $DB -qAt <<SQL
drop table if exists records;
create table records (
  record_id text primary key,
  seq bigint generated always as identity not null,
  topic text not null, subject text not null, content_hash text not null, accepted_at bigint not null,
  payload text not null, relay_id text not null, session_id text not null,
  batch_id text, leaf_index integer, leaf_hash text, stored_at timestamptz not null default now()
  $( [ "$variant" = 0007 ] && echo ', position bigint' ));
create index records_unbatched on records (seq) where batch_id is null;
$ddl
checkpoint;
select pg_current_wal_lsn() as start \gset
insert into records (record_id, topic, subject, content_hash, accepted_at, payload, relay_id, session_id$column)
  select '0x' || md5(i::text) || md5((i+1)::text), 'demo', 'pub-0', '0x' || md5(i::text) || md5(i::text), 1764000000000 + i,
         '{"at":1764000000000,"fill":"' || repeat('x', 157) || '","n":' || i || '}', 'relay-1', 'AAAAAAAAAAAAAAAAAAAAAA'$value
  from generate_series(1, 100000) i;
do \$\$ begin for b in 0..49 loop
  update records set batch_id = 'batch-' || b, leaf_index = seq - b * 2000 - 1, leaf_hash = '0x' || md5(record_id)
   where seq > b * 2000 and seq <= (b + 1) * 2000 and batch_id is null;
end loop; end \$\$;
select '$variant', round(pg_wal_lsn_diff(pg_current_wal_lsn(), :'start') / 100000.0) as wal_bytes_per_record;
SQL
}
for round in 1 2; do for variant in "${VARIANTS[@]}"; do run "$variant"; done; done
psql -h 127.0.0.1 -U postgres -qc "drop database $DB" >/dev/null
