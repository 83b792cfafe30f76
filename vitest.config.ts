import { defineConfig } from 'vitest/config';

// One vitest run covers every workspace package; each package with tests has its own
// vitest.config.ts (its project). The forge tests run separately (see infra/test-runner).
export default defineConfig({
  test: {
    // apps/*/e2e: end-to-end projects (the whole stack and a browser), e.g. apps/web/e2e.
    projects: ['packages/*', 'apps/*', 'apps/*/e2e', 'contracts', 'infra/*'],
  },
});
