import { statSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Test files that start a whole stack (anvil, every service) or many processes: the long
 * poles of a run. Started first, they overlap the many short files instead of running alone
 * at the end (vitest orders files by project name when it has no timings, as on a clean
 * clone, which put infra/stack's last).
 */
const LONG_FILES = [
  'packages/cli/test/cli.test.ts',
  'apps/rtc-relay/test/relay.test.ts',
  'apps/chain-indexer/src/app.test.ts',
  'packages/db/src/ledger.test.ts',
  'infra/stack/test/cli.test.ts',
  'apps/chain-writer/src/anchor/restart.test.ts',
  'apps/chain-writer/src/app.test.ts',
  'infra/faults/test/subscribers.test.ts',
  'apps/web/e2e/netns.e2e.test.ts',
];

/** Within each group (sequence.groupOrder): the long files first, then larger files first. */
class LongFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const weight = (file: TestSpecification) => {
      const long = LONG_FILES.findIndex((path) => file.moduleId.endsWith(path));
      if (long !== -1) return Number.MAX_SAFE_INTEGER - long;
      try {
        return statSync(file.moduleId).size;
      } catch {
        return 0;
      }
    };
    return [...(await super.sort(files))].sort(
      (a, b) =>
        a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder ||
        weight(b) - weight(a),
    );
  }
}

// One vitest run covers every workspace package; each package with tests has its own
// vitest.config.ts (its project). The forge tests run separately (see infra/test-runner).
export default defineConfig({
  test: {
    // Most test files wait on I/O (Redis, Postgres, anvil's blocks, data channels), so three
    // files at a time keep two cores busy; vitest's default here would be one (cores - 1).
    // The e2e and fault projects still run alone, after the rest (their groupOrder).
    maxWorkers: 3,
    sequence: { sequencer: LongFirstSequencer },
    // apps/*/e2e: end-to-end projects (the whole stack and a browser), e.g. apps/web/e2e.
    projects: [
      'packages/*',
      'apps/*',
      'apps/*/e2e',
      'contracts',
      'infra/*',
      'infra/faults/vitest.subscribers.config.ts',
      'apps/web/e2e/vitest.netns.config.ts',
    ],
  },
});
