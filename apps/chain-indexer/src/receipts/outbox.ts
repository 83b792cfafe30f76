import {
  type AnchoringAnnouncement,
  announceAnchoring,
  type BusDeps,
  createQueue,
  jobIds,
  type TypedQueue,
} from '@streamanchor/bus';
import {
  type BatchLedger,
  BatchRootMismatchError,
  batchTopicPositions,
  createBatchLedger,
  type Database,
  type NoticeContent,
} from '@streamanchor/db';
import {
  AUDIT_TOPIC,
  createReceiptProofVerifier,
  positionRangesOf,
  type ReceiptAnchor,
  type ReceiptNoticeJob,
  type ReceiptProofVerifier,
  type ReceiptRecord,
  receiptOf,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { Kysely } from 'kysely';
import type { Config } from '../config';

export interface OutboxDeps {
  config: Pick<
    Config,
    'chainId' | 'contract' | 'receiptsPerJob' | 'finalityDepth' | 'receiptCacheRecords'
  >;
  logger: Logger;
  db: Kysely<Database>;
  bus: BusDeps;
}

export interface FlushResult {
  /** Receipt notices (batch revisions) turned into jobs. */
  notices: number;
  /** Receipts enqueued (before BullMQ's deduplication by job id). */
  receipts: number;
  jobs: number;
  /** Receipts that failed the proof check (verifyReceiptProof's verdict) and were not sent. */
  invalid: number;
  /** Anchoring changes announced to the subscribers of watched topics (one per topic). */
  announced: number;
}

export interface ReceiptOutbox {
  /** Sends every receipt notice not sent yet, oldest first. */
  flush(): Promise<FlushResult>;
  close(): Promise<void>;
}

/** A batch's first notice (its first inclusion) is revision 1: the ledger counts from there. */
const FIRST_REVISION = 1;

/** Notices handled per query; the flush loops until none is left. */
const NOTICES_PER_QUERY = 20;

/**
 * How long an enqueued receipt notice's job id keeps a second add of it a no-op (ms): well
 * past an indexer takeover (INDEXER_LEASE_MS, seconds), one small Redis key per job.
 */
export const RECEIPT_DEDUP_TTL_MS = 10 * 60_000;

/**
 * Job id of one chunk of one batch revision's receipts for one relay. Deterministic: a
 * re-run after a crash produces the same ids, which BullMQ ignores while those jobs exist;
 * a new revision (final, reorged, included again) has new ids.
 */
export function receiptJobId(
  batchId: string,
  revision: number,
  relayId: string,
  chunk: number,
  chunks: number,
): string {
  const base = jobIds.receiptNotice(batchId, relayId, revision);
  return chunks === 1 ? base : `${base}-${chunk}`;
}

/**
 * A notice's sessions in jobs of at most `perJob` records, in order; a session with more
 * records than fit is split over consecutive jobs. A session given by its number of records
 * (a later notice, NoticeSessionCount) weighs one.
 */
export function chunkSessions(
  sessions: ReadonlyMap<string, readonly ReceiptRecord[] | number>,
  perJob: number,
): ReceiptNoticeJob['sessions'][] {
  const chunks: ReceiptNoticeJob['sessions'][] = [];
  let chunk: ReceiptNoticeJob['sessions'] = [];
  let room = perJob;
  const took = (n: number) => {
    room -= n;
    if (room > 0) return;
    chunks.push(chunk);
    chunk = [];
    room = perJob;
  };
  for (const [sessionId, records] of sessions) {
    if (typeof records === 'number') {
      chunk.push({ sessionId, recordCount: records });
      took(1);
      continue;
    }
    for (let from = 0; from < records.length; ) {
      const take = Math.min(room, records.length - from);
      chunk.push({ sessionId, records: records.slice(from, from + take) });
      from += take;
      took(take);
    }
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/**
 * The receipts outbox: the ledger writes one notice per change of a batch's anchoring
 * (included, final, reorged) in the transaction that made the change; this turns each into
 * receiptNotice jobs per relay (chunked), then stamps the notice sent. The notice row is the
 * outbox's state, so a crash between enqueueing and stamping re-enqueues the same job ids.
 */
export function createReceiptOutbox({ config, logger, db, bus }: OutboxDeps): ReceiptOutbox {
  const ledger: BatchLedger = createBatchLedger(db, {
    chainId: config.chainId,
    contract: config.contract,
    finalityDepth: config.finalityDepth,
    contentCacheRecords: config.receiptCacheRecords,
  });
  const queues = new Map<string, TypedQueue<'receipts'>>();
  const queueFor = (relayId: string) => {
    let queue = queues.get(relayId);
    if (!queue) {
      queue = createQueue(bus, 'receipts', relayId);
      queues.set(relayId, queue);
    }
    return queue;
  };
  // verifyReceiptProof on hash-wasm: every receipt is re-checked before it is sent.
  let verifier: Promise<ReceiptProofVerifier> | undefined;
  const loadVerifier = () => {
    verifier ??= createReceiptProofVerifier().catch((error: unknown) => {
      verifier = undefined;
      throw error;
    });
    return verifier;
  };

  /**
   * Proofs already checked, with the root they lead to. The ledger hands out the same frozen
   * record (leaf fields and proof) for every notice of a batch while it keeps the batch
   * cached (RECEIPT_CACHE_RECORDS); so a batch's second notice (final after included) is not
   * checked again. A proof read anew is a new array and is checked.
   */
  const verified = new WeakMap<readonly string[], string>();

  type Notice = Awaited<ReturnType<BatchLedger['unsentNotices']>>[number];
  type ReceiptJob = Parameters<TypedQueue<'receipts'>['addBulk']>[0][number];

  /** The receiptNotice jobs one notice makes, per relay (not added yet). */
  async function jobsOf(
    notice: Notice,
    verify: ReceiptProofVerifier,
  ): Promise<{
    byRelay: Map<string, ReceiptJob[]>;
    receipts: number;
    invalid: number;
    anchor?: ReceiptAnchor;
    topics?: Set<string>;
  }> {
    let content: NoticeContent;
    try {
      content = await ledger.noticeOf(notice);
    } catch (error) {
      // Rows changed after the batch was built: no receipt of it can be right, and retrying
      // would hold up every later notice. Say so loudly and go on.
      if (!(error instanceof BatchRootMismatchError)) throw error;
      logger.error(
        { batchId: notice.batch_id, revision: notice.revision, err: error },
        'BUG: stored records do not rebuild the anchored root; no receipts sent for this batch',
      );
      return { byRelay: new Map(), receipts: 0, invalid: Number(error.details.recordCount ?? 0) };
    }
    const { anchor } = content;
    // A batch's first notice carries each session's records; a later one (final, reorged,
    // included again) only their number: records and proofs never change, a v2 session
    // already has them, and a relay that needs them asks (SessionRecordsRequest).
    const lean = notice.revision > FIRST_REVISION;
    // relay → session → its records of the batch, in leaf order (or, lean, their number).
    const byRelay = new Map<string, Map<string, ReceiptRecord[] | number>>();
    const topics = new Set<string>();
    let invalid = 0;
    const verifiedRecord = (record: ReceiptRecord): boolean => {
      if (verified.get(record.proof) === anchor.merkleRoot) return true;
      let valid = false;
      try {
        valid = verify(receiptOf(anchor, record));
      } catch {}
      if (valid && Object.isFrozen(record.proof)) verified.set(record.proof, anchor.merkleRoot);
      return valid;
    };
    for (const { relayId, sessionId, record } of content.records) {
      // The writer's audit-log heads belong to no session: nobody to deliver them to.
      if (record.topic === AUDIT_TOPIC) continue;
      topics.add(record.topic);
      // A later notice sends no record: nothing of it to check.
      if (!lean && !verifiedRecord(record)) {
        invalid += 1;
        logger.error(
          { batchId: notice.batch_id, recordId: record.recordId, leafIndex: record.leafIndex },
          'BUG: receipt does not verify against the anchored root; not sent',
        );
        continue;
      }
      let sessions = byRelay.get(relayId);
      if (!sessions) {
        sessions = new Map();
        byRelay.set(relayId, sessions);
      }
      const held = sessions.get(sessionId);
      if (lean) sessions.set(sessionId, ((held as number | undefined) ?? 0) + 1);
      else if (held) (held as ReceiptRecord[]).push(record);
      else sessions.set(sessionId, [record]);
    }

    const jobs = new Map<string, ReceiptJob[]>();
    let receipts = 0;
    for (const [relayId, sessions] of byRelay) {
      const chunks = chunkSessions(sessions, config.receiptsPerJob);
      jobs.set(
        relayId,
        chunks.map((chunk, i) => {
          const jobId = receiptJobId(notice.batch_id, notice.revision, relayId, i, chunks.length);
          return {
            name: 'receiptNotice',
            data: { anchor, sessions: chunk },
            opts: {
              jobId,
              // The job id alone dedupes only while the job exists, and a delivered one is
              // removed at once. An indexer that enqueued a notice and lost its lock before
              // marking it sent (a takeover) has its successor enqueue it again: the key
              // kept for RECEIPT_DEDUP_TTL_MS makes that second add a no-op.
              deduplication: { id: jobId, ttl: RECEIPT_DEDUP_TTL_MS },
              attempts: 5,
              backoff: { type: 'exponential', delay: 1000 },
              removeOnComplete: true,
              removeOnFail: { age: 24 * 3600 },
            },
          };
        }),
      );
      for (const list of sessions.values())
        receipts += typeof list === 'number' ? list : list.length;
    }
    logger.debug(
      {
        batchId: notice.batch_id,
        revision: notice.revision,
        status: notice.status,
        relays: byRelay.size,
        jobs: [...jobs.values()].reduce((n, list) => n + list.length, 0),
        receipts,
      },
      'receipts to enqueue',
    );
    return { byRelay: jobs, receipts, invalid, anchor, topics };
  }

  /**
   * The `batch` notices (docs/protocol.md §5.9) of these anchoring changes for the topics
   * some relay watches (has subscribers to): per batch and topic, the anchor and the topic's
   * positions the batch holds. Topics nobody watches cost nothing but the watched set's read.
   */
  async function announcementsOf(
    changes: readonly { batchId: string; anchor: ReceiptAnchor; topics: ReadonlySet<string> }[],
  ): Promise<AnchoringAnnouncement[]> {
    if (changes.length === 0) return [];
    // Lenient by a minute for the clocks' skew: the announce script checks by Redis's clock.
    const watched = new Set(
      await bus.connection.zrangebyscore(bus.keys.watchedTopics, Date.now() - 60_000, '+inf'),
    );
    const announcements: AnchoringAnnouncement[] = [];
    const positionsOf = new Map<string, Promise<Map<string, number[]>>>();
    for (const { batchId, anchor, topics } of changes) {
      if (![...topics].some((topic) => watched.has(topic))) continue;
      let positions = positionsOf.get(batchId);
      if (!positions) {
        positions = batchTopicPositions(db, batchId);
        positionsOf.set(batchId, positions);
      }
      for (const [topic, list] of await positions) {
        if (!watched.has(topic) || list.length === 0) continue;
        announcements.push({
          topic,
          entry: JSON.stringify({ anchor, positions: positionRangesOf(list) }),
        });
      }
    }
    return announcements;
  }

  /**
   * One query's notices: their jobs go out in one `addBulk` per relay (one round trip, in
   * notice order), then the notices are stamped sent in one statement. A crash in between
   * re-enqueues the same job ids, which BullMQ ignores.
   */
  async function sendAll(
    notices: readonly Notice[],
    verify: ReceiptProofVerifier,
  ): Promise<Omit<FlushResult, 'notices'>> {
    const byRelay = new Map<string, ReceiptJob[]>();
    const changes: { batchId: string; anchor: ReceiptAnchor; topics: Set<string> }[] = [];
    let receipts = 0;
    let invalid = 0;
    for (const notice of notices) {
      const made = await jobsOf(notice, verify);
      receipts += made.receipts;
      invalid += made.invalid;
      if (made.anchor && made.topics && made.topics.size > 0)
        changes.push({ batchId: notice.batch_id, anchor: made.anchor, topics: made.topics });
      for (const [relayId, list] of made.byRelay) {
        const all = byRelay.get(relayId) ?? [];
        all.push(...list);
        byRelay.set(relayId, all);
      }
    }
    let jobs = 0;
    for (const [relayId, list] of byRelay) {
      await queueFor(relayId).addBulk(list);
      jobs += list.length;
    }
    // Before the notices are stamped sent: a crash in between announces them again (a
    // subscriber may get a `batch` twice; the anchor's revision tells).
    const announced = await announceAnchoring(
      bus.connection,
      bus.keys,
      await announcementsOf(changes),
    );
    await ledger.markNoticesSent(notices.map((notice) => notice.id));
    return { jobs, receipts, invalid, announced };
  }

  return {
    async flush() {
      const total: FlushResult = { notices: 0, receipts: 0, jobs: 0, invalid: 0, announced: 0 };
      const verify = await loadVerifier();
      for (;;) {
        const notices = await ledger.unsentNotices(NOTICES_PER_QUERY);
        if (notices.length > 0) {
          const sent = await sendAll(notices, verify);
          total.notices += notices.length;
          total.receipts += sent.receipts;
          total.jobs += sent.jobs;
          total.invalid += sent.invalid;
          total.announced += sent.announced;
        }
        if (notices.length < NOTICES_PER_QUERY) return total;
      }
    },

    async close() {
      await Promise.all([...queues.values()].map((queue) => queue.close()));
      queues.clear();
    },
  };
}
