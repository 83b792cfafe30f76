import { defineProject } from 'vitest/config';

// The web package's unit tests. The end-to-end tests in e2e/ are their own project ('e2e',
// e2e/vitest.config.ts): they start the whole stack and must not run here as well.
export default defineProject({
  test: {
    name: 'web',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['e2e/**', 'node_modules/**', 'dist/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
