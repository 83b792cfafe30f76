import { defineProject } from 'vitest/config';

// End-to-end tests: the whole local stack (startStack from @streamanchor/stack: anvil,
// every service as a child process) driven by a real Chromium through the demo page.
// One file at a time, after every other project (groupOrder 1): each file starts a full
// stack, and the machines have two cores.
export default defineProject({
  test: {
    name: 'e2e',
    root: import.meta.dirname,
    include: ['**/*.e2e.test.ts'],
    // The netns tests run beside the unit tests: vitest.netns.config.ts.
    exclude: ['**/node_modules/**', 'netns.e2e.test.ts'],
    fileParallelism: false,
    sequence: { groupOrder: 1 },
    testTimeout: 300_000,
    hookTimeout: 240_000,
  },
});
