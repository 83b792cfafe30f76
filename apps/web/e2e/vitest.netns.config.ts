import { defineProject } from 'vitest/config';

// The TURN tests in network namespaces (netns.e2e.test.ts): a private stack, coturn and
// Chromium on their own addresses, asserting connectivity and receipts, never timing. So,
// like the subscriber fault scenarios, they run beside the unit tests (groupOrder 0) instead
// of in the one-file-at-a-time e2e group, which keeps `pnpm test` inside its time.
export default defineProject({
  test: {
    name: 'e2e-netns',
    root: import.meta.dirname,
    include: ['netns.e2e.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 240_000,
  },
});
