#!/bin/bash
# WAL bytes per record for insert + batch stamp, with the records indexes before (old) and
# after (new) migration 0006_records_index_writes, alternated. Needs psql and a local
# Postgres (PGHOST 127.0.0.1, user postgres); makes and drops the database sa_walbench.
# Run: bash packages/db/bench/records-wal.sh
DB=sa_walbench
psql -h 127.0.0.1 -U postgres -qc "drop database if exists $DB" -c "create database $DB" >/dev/null
run() {
  local variant=$1
  psql -h 127.0.0.1 -U postgres -d $DB -qAt <<SQL
drop table if exists records;
create table records (
  record_id text primary key,
  seq bigint generated always as identity not null,
  topic text not null, subject text not null, content_hash text not null, accepted_at bigint not null,
  payload text not null, relay_id text not null, session_id text not null,
  batch_id text, leaf_index integer, leaf_hash text, stored_at timestamptz not null default now());
create index records_unbatched on records (seq) where batch_id is null;
$( if [ $variant = old ]; then echo "alter table records add constraint records_seq_key unique (seq); create index records_batch on records (batch_id, leaf_index);"; else echo "create index records_batch on records (batch_id, leaf_index) where batch_id is not null;"; fi )
checkpoint;
select pg_current_wal_lsn() as start \gset
insert into records (record_id, topic, subject, content_hash, accepted_at, payload, relay_id, session_id)
  select '0x' || md5(i::text) || md5((i+1)::text), 'demo', 'pub-0', '0x' || md5(i::text) || md5(i::text), 1764000000000 + i,
         '{"at":1764000000000,"fill":"' || repeat('x', 157) || '","n":' || i || '}', 'relay-1', 'AAAAAAAAAAAAAAAAAAAAAA'
  from generate_series(1, 100000) i;
do \$\$ begin for b in 0..49 loop
  update records set batch_id = 'batch-' || b, leaf_index = seq - b * 2000 - 1, leaf_hash = '0x' || md5(record_id)
   where seq > b * 2000 and seq <= (b + 1) * 2000 and batch_id is null;
end loop; end \$\$;
select '$variant', round(pg_wal_lsn_diff(pg_current_wal_lsn(), :'start') / 100000.0) as wal_bytes_per_record;
SQL
}
for round in 1 2; do run old; run new; done
psql -h 127.0.0.1 -U postgres -qc "drop database $DB" >/dev/null
