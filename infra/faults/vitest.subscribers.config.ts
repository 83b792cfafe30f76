import { defineProject } from 'vitest/config';
import { FAULT_TIMEOUTS } from './vitest.config';

// Subscribers under kill -9 of their relay and of Redis (see vitest.config.ts): each scenario
// runs a private stack (its own Redis, Postgres database and ports), so it can share the
// machine with the unit tests (groupOrder 0).
export default defineProject({
  test: {
    name: 'faults-subscribers',
    root: import.meta.dirname,
    include: ['test/subscribers.test.ts'],
    ...FAULT_TIMEOUTS,
  },
});
