import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Runs scripts/build.ts first, so src/generated exists and matches the Solidity sources.
    globalSetup: ['./test/global-setup.ts'],
  },
});
