import type { ReceiptRecord } from '@streamanchor/protocol';
import { describe, expect, test } from 'vitest';
import { chunkSessions } from './outbox';

/** Stand-in records: chunkSessions only counts and slices them. */
const records = (session: string, count: number) =>
  Array.from(
    { length: count },
    (_, i) => ({ recordId: `${session}-${i}` }) as unknown as ReceiptRecord,
  );
const ids = (chunk: ReturnType<typeof chunkSessions>[number]) =>
  chunk.map((session) => [
    session.sessionId,
    'records' in session ? session.records.map((r) => r.recordId as string) : session.recordCount,
  ]);

describe('chunkSessions', () => {
  test('default: sessions that fit together share one job', () => {
    const chunks = chunkSessions(
      new Map([
        ['a', records('a', 2)],
        ['b', records('b', 1)],
      ]),
      5,
    );
    expect(chunks.map(ids)).toEqual([
      [
        ['a', ['a-0', 'a-1']],
        ['b', ['b-0']],
      ],
    ]);
  });

  test('behavior: a session larger than a job is split over consecutive jobs, in order', () => {
    const chunks = chunkSessions(
      new Map([
        ['a', records('a', 3)],
        ['b', records('b', 4)],
      ]),
      2,
    );
    expect(chunks.map(ids)).toEqual([
      [['a', ['a-0', 'a-1']]],
      [
        ['a', ['a-2']],
        ['b', ['b-0']],
      ],
      [['b', ['b-1', 'b-2']]],
      [['b', ['b-3']]],
    ]);
    expect(
      chunks.every(
        (chunk) => chunk.reduce((n, s) => n + ('records' in s ? s.records.length : 1), 0) <= 2,
      ),
    ).toBe(true);
  });

  test('behavior: a session given by its number of records (a later notice) weighs one', () => {
    const chunks = chunkSessions(
      new Map<string, ReceiptRecord[] | number>([
        ['a', 3],
        ['b', 500],
        ['c', 1],
      ]),
      2,
    );
    expect(chunks.map(ids)).toEqual([
      [
        ['a', 3],
        ['b', 500],
      ],
      [['c', 1]],
    ]);
  });

  test('behavior: no sessions, no jobs', () => {
    expect(chunkSessions(new Map(), 10)).toEqual([]);
  });
});
