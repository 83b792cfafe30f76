import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  AcceptedRecord,
  type AcceptedRecord as AcceptedRecordType,
  unstorableTextProblem,
  utf8Length,
} from '@streamanchor/protocol';

const acceptedRecordCheck = TypeCompiler.Compile(AcceptedRecord);

/** Bounds on fields the schema leaves open: what one row may hold (storage, not policy). */
export const STORED_LIMITS = {
  /** Canonical payload bytes (the relay's own limit is far lower; this only guards storage). */
  maxPayloadBytes: 1024 * 1024,
  maxRelayIdLength: 256,
} as const;

export type RecordCheck =
  | { ok: true; record: AcceptedRecordType }
  | { ok: false; reason: string; recordId: string | null };

/**
 * Checks one item of a records job before it is inserted, in this order: the AcceptedRecord
 * schema (at most 3 problems named), then what Postgres text can hold (no U+0000, no lone
 * surrogate, in any field), then lengths the schema leaves open. Never throws.
 */
export function checkRecord(item: unknown): RecordCheck {
  const recordId = readRecordId(item);
  if (!acceptedRecordCheck.Check(item)) {
    const problems: string[] = [];
    for (const error of acceptedRecordCheck.Errors(item)) {
      problems.push(`${error.path || '/'}: ${error.message}`);
      if (problems.length >= 3) break;
    }
    return { ok: false, recordId, reason: `schema: ${problems.join('; ') || 'mismatch'}` };
  }
  const unstorable = unstorableTextProblem(item);
  if (unstorable) return { ok: false, recordId, reason: `unstorable text: ${unstorable}` };
  if (item.relayId.length > STORED_LIMITS.maxRelayIdLength) {
    return { ok: false, recordId, reason: 'too long: /relayId' };
  }
  if (utf8Length(item.payload) > STORED_LIMITS.maxPayloadBytes) {
    return { ok: false, recordId, reason: 'too long: /payload' };
  }
  return { ok: true, record: item };
}

/** The item's recordId when it is a storable string (for the dead letter's record_id column). */
function readRecordId(item: unknown): string | null {
  if (item === null || typeof item !== 'object') return null;
  const value = (item as { recordId?: unknown }).recordId;
  if (typeof value !== 'string' || value.length > 256) return null;
  return unstorableTextProblem(value) ? null : value;
}
