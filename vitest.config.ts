import { defineConfig } from 'vitest/config';

// One vitest run covers every workspace package; each package with tests has its own
// vitest.config.ts (its project). The forge tests run separately (see infra/test-runner).
export default defineConfig({
  test: {
    // Most test files wait on I/O (Redis, Postgres, anvil's blocks, data channels), so three
    // files at a time keep two cores busy; vitest's default here would be one (cores - 1).
    // The e2e and fault projects still run alone, after the rest (their groupOrder).
    maxWorkers: 3,
    // apps/*/e2e: end-to-end projects (the whole stack and a browser), e.g. apps/web/e2e.
    projects: ['packages/*', 'apps/*', 'apps/*/e2e', 'contracts', 'infra/*'],
  },
});
