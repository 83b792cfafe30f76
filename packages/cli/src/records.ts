/**
 * The `record` line `subscribe` prints, from a record delivered on the data
 * channel (docs/protocol.md §5.9) or read from history (§3.8), and its content check.
 */
import { type SubscribedRecord, verifyDeliveredRecord } from '@streamanchor/client';
import { contentHashOf, type TopicHistoryRecord } from '@streamanchor/protocol';
import type { Io } from './command';

export interface RecordLine {
  type: 'record';
  topic: string;
  position: number;
  recordId: string;
  subject: string;
  contentHash: string;
  acceptedAt: number;
  /** The payload as a JSON value; null when it was pruned (payload retention). */
  payload: unknown;
  /** Present when the payload was pruned: nothing to check it against. */
  pruned?: true;
  /** From history only: the batch the record is in (null until the writer batched it). */
  batchId?: string | null;
}

/** A delivered record's line, and whether its payload hashes to its contentHash (null: pruned). */
export function deliveredLine(record: SubscribedRecord & { pruned?: true }): {
  line: RecordLine;
  contentMatches: boolean | null;
} {
  const { topic, position, recordId, subject, contentHash, acceptedAt, payload } = record;
  const line: RecordLine = {
    type: 'record',
    topic,
    position,
    recordId,
    subject,
    contentHash,
    acceptedAt,
    payload,
  };
  if (record.pruned) return { line: { ...line, pruned: true }, contentMatches: null };
  return { line, contentMatches: verifyDeliveredRecord(record) };
}

/** A history record's line: its payload text parsed, checked against contentHash (null: pruned). */
export function historyLine(
  topic: string,
  record: TopicHistoryRecord,
): { line: RecordLine; contentMatches: boolean | null } {
  const { position, recordId, subject, contentHash, acceptedAt, payload, batchId } = record;
  const base = { type: 'record' as const, topic, position, recordId, subject, contentHash };
  if (payload === null) {
    return {
      line: { ...base, acceptedAt, payload: null, pruned: true, batchId },
      contentMatches: null,
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return { line: { ...base, acceptedAt, payload, batchId }, contentMatches: false };
  }
  // The text is the canonical payload itself: its bytes are what was hashed.
  return {
    line: { ...base, acceptedAt, payload: value, batchId },
    contentMatches: contentHashOf(payload) === contentHash,
  };
}

/** Prints a record line; warns (and counts) when its payload does not hash to its contentHash. */
export function printRecord(
  io: Io,
  { line, contentMatches }: { line: RecordLine; contentMatches: boolean | null },
): boolean {
  io.json(line);
  if (contentMatches === false) {
    io.warn(
      `record ${line.position} (${line.recordId}): its contentHash is not the hash of its payload`,
    );
    return false;
  }
  return true;
}
