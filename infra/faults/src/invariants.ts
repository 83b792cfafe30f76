/**
 * The fault suite's invariants, read from Postgres (the services' database) and from the
 * chain itself (anvil, directly, never through the fault proxy):
 *
 *  1. every acked recordId is in `records` exactly once, with a batch;
 *  2. every such batch has exactly one BatchAnchored log on the canonical chain, and the
 *     batch row names that anchoring (block hash, log index) once it is included/final;
 *  3. `anchor_events` equals the chain's BatchAnchored logs: the same
 *     (block_hash, log_index, batch_id) set — no orphaned event kept, none missing;
 *  4. every receipt notice with status `final` names a canonical block;
 *  5. (settled) no batch is left `built` or `sent`, and every batch holding acked records is
 *     `final` with its newest notice `final`.
 *
 * 1–4 must hold at any quiet moment; 5 only once the system had time to settle, so
 * `checkInvariants` reports it separately (`pending`) and `settled` requires both.
 */
import { streamAnchorAbi } from '@streamanchor/contracts';
import type pg from 'pg';
import { type Address, BlockNotFoundError, type PublicClient } from 'viem';

export interface InvariantInput {
  pool: pg.Pool;
  client: PublicClient;
  chainId: number;
  contract: Address;
  deploymentBlock: bigint;
  /** Every recordId a publisher got an ack for (lowercase 0x hex). */
  acked: Iterable<string>;
}

export interface InvariantCounts {
  acked: number;
  /** Rows in `records` (acked or not: a publish whose answer was lost may be stored too). */
  stored: number;
  batches: number;
  batchesFinal: number;
  chainLogs: number;
  anchorEvents: number;
  noticesFinal: number;
  head: number;
  indexerCursor: number | null;
}

export interface InvariantReport {
  /** Invariants 1–4 broken: each line names the invariant and the offending rows. */
  violations: string[];
  /** Invariant 5 not (yet) met: work still in flight. */
  pending: string[];
  counts: InvariantCounts;
  /** True when nothing is violated and nothing is pending. */
  settled: boolean;
}

const LIST_MAX = 8;
const list = (items: readonly string[]) =>
  items.length <= LIST_MAX
    ? items.join(', ')
    : `${items.slice(0, LIST_MAX).join(', ')} … (+${items.length - LIST_MAX})`;

export async function checkInvariants(input: InvariantInput): Promise<InvariantReport> {
  const { pool, client } = input;
  const contract = input.contract.toLowerCase();
  const acked = [...new Set([...input.acked].map((id) => id.toLowerCase()))];
  const violations: string[] = [];
  const pending: string[] = [];

  const head = await client.getBlockNumber({ cacheTime: 0 });
  const hashes = new Map<bigint, string | undefined>();
  const canonicalHash = async (blockNumber: bigint): Promise<string | undefined> => {
    if (!hashes.has(blockNumber)) {
      try {
        const block = await client.getBlock({ blockNumber, includeTransactions: false });
        hashes.set(blockNumber, block.hash?.toLowerCase());
      } catch (error) {
        if (!(error instanceof BlockNotFoundError)) throw error;
        hashes.set(blockNumber, undefined);
      }
    }
    return hashes.get(blockNumber);
  };

  // The chain's BatchAnchored logs up to `head`, checked against the canonical hashes.
  const rawLogs = await client.getContractEvents({
    address: input.contract,
    abi: streamAnchorAbi,
    eventName: 'BatchAnchored',
    fromBlock: input.deploymentBlock,
    toBlock: head,
    strict: true,
  });
  const logs = rawLogs.map((log) => ({
    blockNumber: log.blockNumber,
    blockHash: log.blockHash.toLowerCase(),
    logIndex: log.logIndex,
    batchId: log.args.batchId.toLowerCase(),
    merkleRoot: log.args.merkleRoot.toLowerCase(),
  }));
  for (const log of logs) {
    if ((await canonicalHash(log.blockNumber)) !== log.blockHash) {
      throw new Error(
        `the chain changed while the invariants were read (log in ${log.blockHash} at ${log.blockNumber}); check again`,
      );
    }
  }
  const logsByBatch = new Map<string, typeof logs>();
  for (const log of logs) {
    const group = logsByBatch.get(log.batchId) ?? [];
    group.push(log);
    logsByBatch.set(log.batchId, group);
  }

  // 1. Every acked record stored exactly once, with a batch.
  const recordRows: { record_id: string; batch_id: string | null; n: number }[] = [];
  for (let i = 0; i < acked.length; i += 1000) {
    const { rows } = await pool.query<{ record_id: string; batch_id: string | null; n: number }>(
      `select lower(record_id) as record_id, max(lower(batch_id)) as batch_id, count(*)::int as n
         from record_leaves where lower(record_id) = any($1::text[]) group by lower(record_id)`,
      [acked.slice(i, i + 1000)],
    );
    recordRows.push(...rows);
  }
  const byRecord = new Map(recordRows.map((row) => [row.record_id, row]));
  const missing = acked.filter((id) => !byRecord.has(id));
  if (missing.length > 0)
    violations.push(`1. ${missing.length} acked records not in records: ${list(missing)}`);
  const duplicated = recordRows.filter((row) => row.n !== 1);
  if (duplicated.length > 0)
    violations.push(
      `1. ${duplicated.length} acked records stored more than once: ${list(duplicated.map((r) => `${r.record_id}×${r.n}`))}`,
    );
  const unbatched = recordRows.filter((row) => row.batch_id === null);
  if (unbatched.length > 0)
    pending.push(
      `${unbatched.length} acked records in no batch yet: ${list(unbatched.map((r) => r.record_id))}`,
    );

  // 2. Each batch holding acked records: exactly one canonical BatchAnchored log.
  const { rows: batchRows } = await pool.query<{
    batch_id: string;
    status: string;
    merkle_root: string;
    block_hash: string | null;
    block_number: string | null;
    log_index: number | null;
  }>(
    `select lower(batch_id) as batch_id, status, lower(merkle_root) as merkle_root,
            lower(block_hash) as block_hash, block_number::text as block_number, log_index
       from batches where chain_id = $1 and lower(contract) = $2`,
    [input.chainId, contract],
  );
  const batches = new Map(batchRows.map((row) => [row.batch_id, row]));
  const ackedBatches = [
    ...new Set(recordRows.flatMap((row) => (row.batch_id ? [row.batch_id] : []))),
  ];
  const notAnchored: string[] = [];
  const anchoredTwice: string[] = [];
  const disagreeing: string[] = [];
  for (const batchId of ackedBatches) {
    const found = logsByBatch.get(batchId) ?? [];
    const batch = batches.get(batchId);
    if (found.length === 0) {
      notAnchored.push(`${batchId} (${batch?.status ?? 'no row'})`);
      continue;
    }
    if (found.length > 1) anchoredTwice.push(`${batchId}×${found.length}`);
    const log = found[0]!;
    if (!batch) {
      violations.push(`2. batch ${batchId} holds acked records but has no batches row`);
      continue;
    }
    if (batch.merkle_root !== log.merkleRoot)
      violations.push(
        `2. batch ${batchId}: stored root ${batch.merkle_root}, on chain ${log.merkleRoot}`,
      );
    if (
      (batch.status === 'included' || batch.status === 'final') &&
      (batch.block_hash !== log.blockHash || batch.log_index !== log.logIndex)
    ) {
      disagreeing.push(
        `${batchId} ${batch.status} at ${batch.block_number}/${batch.block_hash}#${batch.log_index}, chain log at ${log.blockNumber}/${log.blockHash}#${log.logIndex}`,
      );
    }
  }
  if (notAnchored.length > 0)
    pending.push(
      `${notAnchored.length} batches of acked records not anchored on the canonical chain: ${list(notAnchored)}`,
    );
  if (anchoredTwice.length > 0)
    violations.push(
      `2. ${anchoredTwice.length} batches anchored more than once on the chain: ${list(anchoredTwice)}`,
    );
  if (disagreeing.length > 0)
    violations.push(
      `2. ${disagreeing.length} included/final batches name another anchoring than the canonical chain's: ${list(disagreeing)}`,
    );
  const strangers = [...logsByBatch.keys()].filter((id) => !batches.has(id));
  if (strangers.length > 0)
    violations.push(
      `2. ${strangers.length} BatchAnchored logs for batches the writer never built: ${list(strangers)}`,
    );

  // 3. anchor_events = the chain's logs.
  const { rows: eventRows } = await pool.query<{
    block_hash: string;
    block_number: string;
    log_index: number;
    batch_id: string;
  }>(
    `select lower(block_hash) as block_hash, block_number::text as block_number, log_index,
            lower(batch_id) as batch_id
       from anchor_events where chain_id = $1 and lower(contract) = $2`,
    [input.chainId, contract],
  );
  const { rows: cursorRows } = await pool.query<{ block_number: string }>(
    `select block_number::text as block_number from indexer_cursors where chain_id = $1 and lower(contract) = $2`,
    [input.chainId, contract],
  );
  const cursor = cursorRows[0] ? BigInt(cursorRows[0].block_number) : null;
  const keyOf = (e: { blockHash: string; logIndex: number; batchId: string }) =>
    `${e.blockHash}#${e.logIndex}:${e.batchId}`;
  const chainKeys = new Map(logs.map((log) => [keyOf(log), log]));
  const eventKeys = new Map(
    eventRows.map((row) => [
      keyOf({ blockHash: row.block_hash, logIndex: row.log_index, batchId: row.batch_id }),
      row,
    ]),
  );
  const orphaned: string[] = [];
  for (const [key, row] of eventKeys) {
    if (chainKeys.has(key)) continue;
    // An event above our head snapshot was indexed after we read the chain: not judged here.
    if (BigInt(row.block_number) > head) continue;
    const canonical = await canonicalHash(BigInt(row.block_number));
    orphaned.push(
      `${row.batch_id} in block ${row.block_number} ${row.block_hash} (canonical: ${canonical ?? 'none'})`,
    );
  }
  if (orphaned.length > 0)
    violations.push(
      `3. ${orphaned.length} anchor_events not on the canonical chain (orphaned): ${list(orphaned)}`,
    );
  const unindexed = [...chainKeys.entries()].filter(([key]) => !eventKeys.has(key));
  if (unindexed.length > 0) {
    const behind = unindexed.filter(([, log]) => cursor === null || log.blockNumber > cursor);
    const skipped = unindexed.filter(([, log]) => cursor !== null && log.blockNumber <= cursor);
    if (skipped.length > 0)
      violations.push(
        `3. ${skipped.length} chain logs at or below the indexer's cursor (${cursor}) missing from anchor_events: ${list(skipped.map(([k, l]) => `${k} @${l.blockNumber}`))}`,
      );
    if (behind.length > 0)
      pending.push(
        `${behind.length} chain logs above the indexer's cursor (${cursor ?? 'none'}) not indexed yet`,
      );
  }

  // 4. Every `final` notice names a canonical block.
  const { rows: finalNotices } = await pool.query<{
    id: string;
    batch_id: string;
    block_number: string;
    block_hash: string;
  }>(
    `select n.id::text as id, lower(n.batch_id) as batch_id, n.block_number::text as block_number,
            lower(n.block_hash) as block_hash
       from receipt_notices n join batches b on b.batch_id = n.batch_id
      where n.status = 'final' and b.chain_id = $1 and lower(b.contract) = $2`,
    [input.chainId, contract],
  );
  const wrongFinal: string[] = [];
  for (const notice of finalNotices) {
    const canonical = await canonicalHash(BigInt(notice.block_number));
    if (canonical !== notice.block_hash)
      wrongFinal.push(
        `notice ${notice.id} (batch ${notice.batch_id}) final in ${notice.block_number}/${notice.block_hash}, canonical ${canonical ?? 'none'}`,
      );
  }
  if (wrongFinal.length > 0)
    violations.push(
      `4. ${wrongFinal.length} final receipt notices name a non-canonical block: ${list(wrongFinal)}`,
    );

  // 5. Settled: nothing pending, everything acked final.
  const inFlight = batchRows.filter((row) => row.status === 'built' || row.status === 'sent');
  if (inFlight.length > 0)
    pending.push(
      `${inFlight.length} batches still built/sent: ${list(inFlight.map((r) => `${r.batch_id} ${r.status}`))}`,
    );
  const { rows: latest } = await pool.query<{ batch_id: string; status: string }>(
    `select distinct on (n.batch_id) lower(n.batch_id) as batch_id, n.status
       from receipt_notices n order by n.batch_id, n.revision desc, n.id desc`,
  );
  const latestNotice = new Map(latest.map((row) => [row.batch_id, row.status]));
  const notFinal = ackedBatches.filter(
    (id) => batches.get(id)?.status !== 'final' || latestNotice.get(id) !== 'final',
  );
  if (notFinal.length > 0)
    pending.push(
      `${notFinal.length} batches of acked records not final (batch status / newest notice): ${list(notFinal.map((id) => `${id} ${batches.get(id)?.status ?? '-'}/${latestNotice.get(id) ?? '-'}`))}`,
    );

  const { rows: storedRows } = await pool.query<{ n: number }>(
    'select count(*)::int as n from records',
  );
  return {
    violations,
    pending,
    settled: violations.length === 0 && pending.length === 0,
    counts: {
      acked: acked.length,
      stored: storedRows[0]?.n ?? 0,
      batches: batchRows.length,
      batchesFinal: batchRows.filter((row) => row.status === 'final').length,
      chainLogs: logs.length,
      anchorEvents: eventRows.length,
      noticesFinal: finalNotices.length,
      head: Number(head),
      indexerCursor: cursor === null ? null : Number(cursor),
    },
  };
}
