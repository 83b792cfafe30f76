import type { Migration } from 'kysely';
import * as initial from './0001_initial';
import * as receiptsFollowChain from './0002_receipts_follow_chain';
import * as deadLetters from './0003_dead_letters';
import * as auditLog from './0004_audit_log';
import * as proofsDerived from './0005_proofs_derived';
import * as recordsIndexWrites from './0006_records_index_writes';
import * as recordPositions from './0007_record_positions';
import * as payloadRetention from './0008_payload_retention';
import * as indexerLeaders from './0009_indexer_leaders';
import * as batchLeaves from './0010_batch_leaves';

/** Every migration, in order. Names sort lexically; never rename or edit a shipped one. */
export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_receipts_follow_chain': receiptsFollowChain,
  '0003_dead_letters': deadLetters,
  '0004_audit_log': auditLog,
  '0005_proofs_derived': proofsDerived,
  '0006_records_index_writes': recordsIndexWrites,
  '0007_record_positions': recordPositions,
  '0008_payload_retention': payloadRetention,
  '0009_indexer_leaders': indexerLeaders,
  '0010_batch_leaves': batchLeaves,
};
