import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'chain-writer',
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file starts its own anvil and databases; keep the shared 2-core machine calm.
    fileParallelism: false,
  },
});
