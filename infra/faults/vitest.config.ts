import { defineProject } from 'vitest/config';

// The fault suite: the whole stack (every service its own process, Postgres) with a JSON-RPC
// proxy in front of anvil that fires reorgs, and kill -9 of services mid-stream. The short
// version (default) runs inside `pnpm test`; `pnpm test:faults` runs the long one (FAULTS=long).
// After every other project (groupOrder 2, after the e2e tests) and one file at a time: each
// scenario starts a full stack on a two-core machine, and the reorg scenarios time their
// faults against the services' own pace.
// The subscriber scenarios (test/subscribers.test.ts) assert delivery, not timing: they are
// project `faults-subscribers` (vitest.subscribers.config.ts), which runs beside the unit
// tests so that the short suite stays inside the test command's time.
const long = process.env.FAULTS === 'long';

export const FAULT_TIMEOUTS = {
  testTimeout: long ? 900_000 : 240_000,
  hookTimeout: 120_000,
} as const;

export default defineProject({
  test: {
    name: 'faults',
    root: import.meta.dirname,
    include: ['test/**/*.test.ts'],
    exclude: ['test/subscribers.test.ts'],
    fileParallelism: false,
    sequence: { groupOrder: 2 },
    ...FAULT_TIMEOUTS,
  },
});
