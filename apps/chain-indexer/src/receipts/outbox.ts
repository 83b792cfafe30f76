import { type BusDeps, createQueue, jobIds, type TypedQueue } from '@streamanchor/bus';
import type { Database } from '@streamanchor/db';
import { type Receipt, type ReceiptBatchJob, verifyReceiptProof } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import { type Kysely, sql } from 'kysely';
import type { Config } from '../config';

export interface OutboxDeps {
  config: Pick<Config, 'chainId' | 'contract' | 'receiptsPerJob'>;
  logger: Logger;
  db: Kysely<Database>;
  bus: BusDeps;
}

export interface FlushResult {
  batches: number;
  /** Receipts enqueued (before BullMQ's deduplication by job id). */
  receipts: number;
  jobs: number;
  /** Receipts that failed verifyReceiptProof and were not sent. */
  invalid: number;
}

/** Batches handled per query; the flush loops until none is left. */
const BATCHES_PER_QUERY = 20;

/**
 * Job id of one chunk of a batch's receipts for one relay. A batch whose receipts for a
 * relay fit one job uses jobIds.receiptBatch(batchId, relayId) itself; larger groups add
 * `-<chunk>` (0-based). Deterministic: a re-run after a crash produces the same ids.
 */
export function receiptJobId(
  batchId: string,
  relayId: string,
  chunk: number,
  chunks: number,
): string {
  const base = jobIds.receiptBatch(batchId, relayId);
  return chunks === 1 ? base : `${base}-${chunk}`;
}

/**
 * The receipts outbox: every anchored batch whose receipts were not sent yet gets one
 * receiptBatch job per relay (chunked), then receipts_sent_at. The database row is the
 * outbox's state, so a crash between enqueueing and marking re-enqueues the same job
 * ids, which BullMQ ignores while those jobs still exist.
 */
export function createReceiptOutbox({ config, logger, db, bus }: OutboxDeps) {
  const queues = new Map<string, TypedQueue<'receipts'>>();
  const queueFor = (relayId: string) => {
    let queue = queues.get(relayId);
    if (!queue) {
      queue = createQueue(bus, 'receipts', relayId);
      queues.set(relayId, queue);
    }
    return queue;
  };

  async function sendBatch(batch: {
    batch_id: string;
    merkle_root: string;
    record_count: number;
    tx_hash: string | null;
    block_number: string | number | null;
    block_hash: string | null;
    log_index: number | null;
  }): Promise<Omit<FlushResult, 'batches'>> {
    const records = await db
      .selectFrom('records')
      .select([
        'record_id',
        'topic',
        'subject',
        'content_hash',
        'accepted_at',
        'leaf_index',
        'leaf_hash',
        'proof',
        'relay_id',
        'session_id',
      ])
      .where('batch_id', '=', batch.batch_id)
      .orderBy('leaf_index')
      .execute();
    if (records.length !== batch.record_count) {
      logger.error(
        { batchId: batch.batch_id, stored: records.length, recordCount: batch.record_count },
        'anchored batch has a different number of stored records than its record_count',
      );
    }

    const byRelay = new Map<string, ReceiptBatchJob['receipts']>();
    let invalid = 0;
    for (const row of records) {
      const receipt: Receipt = {
        recordId: row.record_id as Receipt['recordId'],
        topic: row.topic,
        subject: row.subject,
        contentHash: row.content_hash as Receipt['contentHash'],
        acceptedAt: Number(row.accepted_at),
        leafHash: (row.leaf_hash ?? '') as Receipt['leafHash'],
        leafIndex: row.leaf_index ?? -1,
        proof: parseProof(row.proof),
        batchId: batch.batch_id as Receipt['batchId'],
        merkleRoot: batch.merkle_root as Receipt['merkleRoot'],
        recordCount: batch.record_count,
        chainId: config.chainId,
        contract: config.contract,
        txHash: batch.tx_hash as Receipt['txHash'],
        blockNumber: Number(batch.block_number),
        blockHash: batch.block_hash as Receipt['blockHash'],
        logIndex: batch.log_index ?? -1,
      };
      let valid = false;
      try {
        valid = verifyReceiptProof(receipt);
      } catch {}
      if (!valid) {
        invalid += 1;
        logger.error(
          { batchId: batch.batch_id, recordId: row.record_id, leafIndex: row.leaf_index },
          'BUG: receipt does not verify against the anchored root; not sent',
        );
        continue;
      }
      const list = byRelay.get(row.relay_id) ?? [];
      list.push({ sessionId: row.session_id, receipt });
      byRelay.set(row.relay_id, list);
    }

    let jobs = 0;
    let receipts = 0;
    for (const [relayId, list] of byRelay) {
      const chunks = Math.ceil(list.length / config.receiptsPerJob);
      for (let chunk = 0; chunk < chunks; chunk++) {
        const part = list.slice(chunk * config.receiptsPerJob, (chunk + 1) * config.receiptsPerJob);
        await queueFor(relayId).add(
          'receiptBatch',
          { receipts: part },
          {
            jobId: receiptJobId(batch.batch_id, relayId, chunk, chunks),
            attempts: 5,
            backoff: { type: 'exponential', delay: 1000 },
            removeOnComplete: true,
            removeOnFail: { age: 24 * 3600 },
          },
        );
        jobs += 1;
        receipts += part.length;
      }
    }
    await db
      .updateTable('batches')
      .set({ receipts_sent_at: sql`now()` })
      .where('batch_id', '=', batch.batch_id)
      .where('status', '=', 'anchored')
      .where('receipts_sent_at', 'is', null)
      .execute();
    logger.debug(
      { batchId: batch.batch_id, relays: byRelay.size, jobs, receipts },
      'receipts enqueued',
    );
    return { jobs, receipts, invalid };
  }

  return {
    /** Sends the receipts of every anchored batch that has none sent yet, in batch order. */
    async flush(): Promise<FlushResult> {
      const total: FlushResult = { batches: 0, receipts: 0, jobs: 0, invalid: 0 };
      let afterSeq = '-1';
      for (;;) {
        const batches = await db
          .selectFrom('batches')
          .select([
            'batch_id',
            'seq',
            'merkle_root',
            'record_count',
            'tx_hash',
            'block_number',
            'block_hash',
            'log_index',
          ])
          .where('status', '=', 'anchored')
          .where('receipts_sent_at', 'is', null)
          .where(sql<boolean>`seq > ${afterSeq}::bigint`)
          .orderBy('seq')
          .limit(BATCHES_PER_QUERY)
          .execute();
        for (const batch of batches) {
          const sent = await sendBatch(batch);
          total.batches += 1;
          total.receipts += sent.receipts;
          total.jobs += sent.jobs;
          total.invalid += sent.invalid;
          afterSeq = String(batch.seq);
        }
        if (batches.length < BATCHES_PER_QUERY) return total;
      }
    },

    /**
     * Removes the still-waiting receipt jobs of batches a reorg put back to 'sent', so the
     * receipts sent after they are anchored again (same job ids) are not deduplicated
     * away in favour of stale ones. Jobs a relay already took cannot be recalled.
     */
    async retract(batchIds: readonly string[]): Promise<number> {
      let removed = 0;
      for (const batchId of batchIds) {
        const groups = await db
          .selectFrom('records')
          .select(['relay_id', (eb) => eb.fn.countAll<string | number>().as('n')])
          .where('batch_id', '=', batchId)
          .groupBy('relay_id')
          .execute();
        for (const group of groups) {
          const chunks = Math.ceil(Number(group.n) / config.receiptsPerJob);
          for (let chunk = 0; chunk < chunks; chunk++) {
            const id = receiptJobId(batchId, group.relay_id, chunk, chunks);
            try {
              removed += (await queueFor(group.relay_id).remove(id)) ? 1 : 0;
            } catch (error) {
              logger.warn({ err: error, jobId: id }, 'could not remove a stale receipt job');
            }
          }
        }
      }
      return removed;
    },

    async close(): Promise<void> {
      await Promise.all([...queues.values()].map((queue) => queue.close()));
      queues.clear();
    },
  };
}
export type ReceiptOutbox = ReturnType<typeof createReceiptOutbox>;

/** jsonb comes back parsed from pg and PGlite; a text column would not. */
function parseProof(value: unknown): Receipt['proof'] {
  const proof = typeof value === 'string' ? JSON.parse(value) : value;
  return Array.isArray(proof) ? (proof as Receipt['proof']) : [];
}
