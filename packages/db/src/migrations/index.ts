import type { Migration } from 'kysely';
import * as initial from './0001_initial';
import * as receiptsFollowChain from './0002_receipts_follow_chain';

/** Every migration, in order. Names sort lexically; never rename or edit a shipped one. */
export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_receipts_follow_chain': receiptsFollowChain,
};
