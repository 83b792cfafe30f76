/**
 * How hard each scenario pushes. `short` runs inside `pnpm test` (≲ 2–3 min in all);
 * `long` (FAULTS=long, `pnpm test:faults`) goes deeper and longer. Every reorg depth stays
 * below the scenario's FINALITY_DEPTH: a deeper reorg would make `final` receipts
 * legitimately wrong.
 */
export interface FaultPlan {
  mode: 'short' | 'long';
  /** Records per second each publisher sends. */
  rate: number;
  /** The most a scenario waits for the system to settle after publishing stopped (ms). */
  settleMs: number;
  afterGetLogs: {
    finalityDepth: number;
    /** Reorgs to fire, each right after an indexer eth_getLogs answer that returned logs. */
    count: number;
    depths: readonly number[];
    minSpacingMs: number;
    /** Give up waiting for that many opportunities after this long (ms). */
    maxStreamMs: number;
  };
  random: {
    finalityDepth: number;
    depths: [number, number];
    probability: number;
    maxCount: number;
    minSpacingMs: number;
    streamMs: number;
  };
  kills: {
    finalityDepth: number;
    /** Services killed in order, each restarted after `downMs`. */
    order: readonly string[];
    /** Acks to wait for between two kills (the stream is flowing again). */
    acksBetween: number;
    downMs: number;
    rounds: number;
  };
  /** Subscribers (docs/protocol.md §5.9) under kill -9 of their relay, and of Redis. */
  subscribers: {
    finalityDepth: number;
    publishers: number;
    /** Records per second each publisher sends. */
    rate: number;
    subscribers: number;
    /** Acks (of each publisher) to wait for before each kill, and after each restart. */
    acksBetween: number;
    /** How long the killed relay, or Redis, stays down. */
    downMs: number;
    rounds: number;
  };
}

export const PLANS: Record<'short' | 'long', FaultPlan> = {
  short: {
    mode: 'short',
    rate: 20,
    settleMs: 90_000,
    afterGetLogs: {
      finalityDepth: 5,
      count: 3,
      depths: [2, 3],
      minSpacingMs: 2500,
      maxStreamMs: 45_000,
    },
    random: {
      finalityDepth: 5,
      depths: [1, 3],
      probability: 0.1,
      maxCount: 4,
      minSpacingMs: 2500,
      streamMs: 15_000,
    },
    kills: {
      finalityDepth: 5,
      order: ['chain-writer', 'chain-indexer', 'rtc-relay'],
      acksBetween: 40,
      downMs: 2000,
      rounds: 1,
    },
    subscribers: {
      finalityDepth: 5,
      publishers: 2,
      rate: 20,
      subscribers: 3,
      acksBetween: 20,
      downMs: 1000,
      rounds: 1,
    },
  },
  long: {
    mode: 'long',
    rate: 40,
    settleMs: 300_000,
    afterGetLogs: {
      finalityDepth: 12,
      count: 12,
      depths: [2, 3],
      minSpacingMs: 3000,
      maxStreamMs: 180_000,
    },
    random: {
      finalityDepth: 12,
      depths: [1, 10],
      probability: 0.05,
      maxCount: 20,
      minSpacingMs: 4000,
      streamMs: 150_000,
    },
    kills: {
      finalityDepth: 12,
      order: ['chain-writer', 'chain-indexer', 'rtc-relay'],
      acksBetween: 200,
      downMs: 4000,
      rounds: 3,
    },
    subscribers: {
      finalityDepth: 12,
      publishers: 2,
      rate: 40,
      subscribers: 6,
      acksBetween: 200,
      downMs: 4000,
      rounds: 3,
    },
  },
};

export const plan: FaultPlan = PLANS[process.env.FAULTS === 'long' ? 'long' : 'short'];
