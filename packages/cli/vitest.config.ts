import { defineProject } from 'vitest/config';

// test/cli.test.ts runs the `streamanchor` bin as child processes against one whole local
// stack (startStack: anvil, Redis under its own prefix, PGlite, every service a process).
export default defineProject({
  test: {
    name: 'cli',
    environment: 'node',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 240_000,
  },
});
