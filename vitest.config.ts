import { defineConfig } from 'vitest/config';

// One vitest run covers every workspace package; each package with tests has its own
// vitest.config.ts (its project). The forge tests run separately (see infra/test-runner).
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'contracts', 'infra/*'],
  },
});
