import type { Redis } from 'ioredis';
import { parsePositions } from './fanout';
import type { Keys } from './keys';

/**
 * `readJobPositions` for several jobs in one MGET (the writer reads a whole group's before
 * storing it). Per job, in order: the positions `addRecordBatch` gave its records, or
 * undefined (a job queued without them, or whose key expired).
 */
export async function mgetJobPositions(
  redis: Redis,
  keys: Keys,
  jobIdList: readonly string[],
): Promise<(number[] | undefined)[]> {
  if (jobIdList.length === 0) return [];
  const texts = await redis.mget(...jobIdList.map((jobId) => keys.positions(jobId)));
  return texts.map((text) => (text === null ? undefined : parsePositions(text)));
}
