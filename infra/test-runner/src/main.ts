/**
 * `pnpm test`: every suite of the repository, one summary line.
 *
 *   1. builds what the tests need (the contracts' typed ABI, the demo page)
 *   2. lint (biome) and typecheck (tsc per workspace package): one check each
 *   3. forge test (Solidity unit, fuzz and invariant tests) and forge snapshot --check
 *   4. vitest run: every TypeScript project, end-to-end tests included
 *   5. pnpm bench --quick: every benchmark in its short form (figures printed, not asserted)
 *
 * The last line printed is exactly `N passed, N failed` (CI reads it); the exit code is
 * non-zero when anything failed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureContractsBuilt, ensureWebBuilt } from '../../stack/src/build';
import { REPO_ROOT } from '../../stack/src/paths';

interface SuiteResult {
  suite: string;
  passed: number;
  failed: number;
  skipped?: number;
  seconds: number;
  note?: string;
}

const results: SuiteResult[] = [];
const bin = (name: string) => join(REPO_ROOT, 'node_modules', '.bin', name);

function heading(text: string): void {
  console.log(`\n━━ ${text} ${'━'.repeat(Math.max(0, 72 - text.length))}`);
}

interface RunResult {
  code: number | null;
  output: string;
  seconds: number;
}

/** Runs a command; streams its output when `stream`, else keeps it (printed on failure). */
function run(
  command: string,
  args: string[],
  {
    cwd = REPO_ROOT,
    stream = false,
    timeoutMs = 15 * 60_000,
  }: { cwd?: string; stream?: boolean; timeoutMs?: number } = {},
): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const onData = (target: NodeJS.WriteStream) => (chunk: Buffer) => {
      if (stream) target.write(chunk);
      output += chunk.toString();
      if (output.length > 2_000_000) output = output.slice(-1_000_000);
    };
    child.stdout.on('data', onData(process.stdout));
    child.stderr.on('data', onData(process.stderr));
    const timer = setTimeout(() => {
      output += `\n[test-runner] ${command} ${args.join(' ')}: timed out after ${timeoutMs / 1000} s, killed\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      output += `\n[test-runner] could not run ${command}: ${error.message}\n`;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, seconds: (Date.now() - started) / 1000 });
    });
  });
}

function printTail(output: string, lines = 60): void {
  const tail = output.trimEnd().split('\n').slice(-lines).join('\n');
  if (tail) console.log(tail);
}

async function check(
  suite: string,
  body: () => Promise<RunResult | { ok: boolean; note?: string }>,
): Promise<boolean> {
  const started = Date.now();
  let ok = false;
  let note: string | undefined;
  try {
    const outcome = await body();
    if ('code' in outcome) {
      ok = outcome.code === 0;
      if (!ok) printTail(outcome.output);
    } else {
      ok = outcome.ok;
      note = outcome.note;
    }
  } catch (error) {
    const details = (error as { details?: string }).details;
    console.log(
      `${(error as Error).message}${details && !(error as Error).message.includes(details) ? `\n${details}` : ''}`,
    );
  }
  const seconds = (Date.now() - started) / 1000;
  results.push({
    suite,
    passed: ok ? 1 : 0,
    failed: ok ? 0 : 1,
    seconds,
    ...(note ? { note } : {}),
  });
  console.log(`${ok ? '✓' : '✗'} ${suite} (${seconds.toFixed(1)} s)${note ? ` — ${note}` : ''}`);
  return ok;
}

/** Every workspace package with a tsconfig.json, as paths relative to the root. */
function typecheckTargets(): string[] {
  const targets: string[] = [];
  for (const group of ['packages', 'apps', 'infra']) {
    const dir = join(REPO_ROOT, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      if (existsSync(join(dir, name, 'tsconfig.json'))) targets.push(`${group}/${name}`);
      // End-to-end tests keep their own tsconfig (they need the DOM types for page code).
      if (existsSync(join(dir, name, 'e2e', 'tsconfig.json'))) targets.push(`${group}/${name}/e2e`);
    }
  }
  if (existsSync(join(REPO_ROOT, 'contracts', 'tsconfig.json'))) targets.push('contracts');
  return targets;
}

interface PackageTsconfig {
  extends?: string;
  compilerOptions?: Record<string, unknown>;
  include?: string[];
}

/** One tsc program: its tsconfig path (from the root) and the packages it checks. */
interface TypecheckProgram {
  tsconfig: string;
  packages: string[];
}

/**
 * Groups the packages into as few tsc programs as their settings allow. Packages whose
 * tsconfig only extends tsconfig.base.json with the same compiler options are checked by
 * one generated program (test-results/typecheck/), so the files they share (viem's types,
 * the workspace packages they all import) are checked once instead of once per package;
 * a package that sets `types` (resolved from its own node_modules) keeps its own program.
 * What is checked is the same: every file each package's own tsconfig includes, with its
 * compiler options.
 */
function typecheckPrograms(): TypecheckProgram[] {
  const groups = new Map<
    string,
    { options: Record<string, unknown>; include: string[]; packages: string[] }
  >();
  const alone: TypecheckProgram[] = [];
  for (const target of typecheckTargets()) {
    const tsconfigPath = `${target}/tsconfig.json`;
    const config = JSON.parse(
      readFileSync(join(REPO_ROOT, tsconfigPath), 'utf8'),
    ) as PackageTsconfig;
    const extendsBase =
      config.extends !== undefined &&
      join(REPO_ROOT, target, config.extends) === join(REPO_ROOT, 'tsconfig.base.json');
    const options = config.compilerOptions ?? {};
    if (!extendsBase || 'types' in options || !config.include) {
      alone.push({ tsconfig: tsconfigPath, packages: [target] });
      continue;
    }
    const key = JSON.stringify(options);
    const group = groups.get(key) ?? { options, include: [], packages: [] };
    group.include.push(...config.include.map((entry) => `../../${target}/${entry}`));
    group.packages.push(target);
    groups.set(key, group);
  }
  const outDir = join(REPO_ROOT, 'test-results', 'typecheck');
  mkdirSync(outDir, { recursive: true });
  const merged: TypecheckProgram[] = [];
  let index = 0;
  for (const group of groups.values()) {
    if (group.packages.length === 1) {
      merged.push({ tsconfig: `${group.packages[0]}/tsconfig.json`, packages: group.packages });
      continue;
    }
    const tsconfig = `test-results/typecheck/tsconfig.${index++}.json`;
    writeFileSync(
      join(REPO_ROOT, tsconfig),
      `${JSON.stringify({ extends: '../../tsconfig.base.json', compilerOptions: group.options, include: group.include }, null, 2)}\n`,
    );
    merged.push({ tsconfig, packages: group.packages });
  }
  // Largest first: two run at a time, and the big one should not start last.
  return [...merged, ...alone].sort((a, b) => b.packages.length - a.packages.length);
}

async function typecheck(): Promise<void> {
  heading('typecheck (tsc, packages with the same settings in one program)');
  const queue = typecheckPrograms();
  // Two at a time: the machines have two cores.
  const worker = async () => {
    for (let program = queue.shift(); program !== undefined; program = queue.shift()) {
      const { tsconfig, packages } = program;
      await check(`typecheck ${packages.join(', ')}`, () =>
        run(bin('tsc'), ['-p', tsconfig, '--pretty', 'false']),
      );
    }
  };
  await Promise.all([worker(), worker()]);
}

interface ForgeReport {
  [contract: string]: { test_results: Record<string, { status: string; reason: string | null }> };
}

async function forge(): Promise<void> {
  heading('forge test (contracts/)');
  const contracts = join(REPO_ROOT, 'contracts');
  const started = Date.now();
  const result = await run('node', ['scripts/foundry.mjs', 'forge', 'test', '--json'], {
    cwd: contracts,
  });
  let passed = 0;
  let failed = 0;
  let note: string | undefined;
  const start = result.output.indexOf('{"');
  try {
    if (start < 0) throw new Error('no JSON in the output');
    const jsonText = result.output.slice(start, result.output.lastIndexOf('}') + 1);
    const report = JSON.parse(jsonText) as ForgeReport;
    for (const [contract, suite] of Object.entries(report)) {
      for (const [name, test] of Object.entries(suite.test_results)) {
        if (test.status === 'Success') passed += 1;
        else {
          failed += 1;
          console.log(
            `✗ ${contract} ${name}: ${test.status}${test.reason ? ` (${test.reason})` : ''}`,
          );
        }
      }
    }
    if (result.code !== 0 && failed === 0) {
      failed = 1;
      note = `forge exited ${result.code}`;
    }
  } catch (error) {
    printTail(result.output);
    failed += 1;
    note = `could not read forge's report: ${(error as Error).message}`;
  }
  const seconds = (Date.now() - started) / 1000;
  results.push({ suite: 'forge test', passed, failed, seconds, ...(note ? { note } : {}) });
  console.log(
    `${failed === 0 ? '✓' : '✗'} forge test: ${passed} passed, ${failed} failed (${seconds.toFixed(1)} s)`,
  );

  await check('forge snapshot --check (gas snapshot is current)', () =>
    run('node', ['scripts/foundry.mjs', 'forge', 'snapshot', '--check'], { cwd: contracts }),
  );
}

interface VitestReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: {
    name: string;
    status: string;
    message?: string;
    assertionResults: { status: string }[];
  }[];
}

async function vitest(): Promise<void> {
  heading('vitest run (all projects)');
  const outDir = join(REPO_ROOT, 'test-results');
  mkdirSync(outDir, { recursive: true });
  const reportPath = join(outDir, 'vitest.json');
  rmSync(reportPath, { force: true });
  const result = await run(
    bin('vitest'),
    ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${reportPath}`],
    { stream: true, timeoutMs: 45 * 60_000 },
  );
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let note: string | undefined;
  if (existsSync(reportPath)) {
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as VitestReport;
    passed = report.numPassedTests;
    failed = report.numFailedTests;
    skipped = report.numPendingTests + report.numTodoTests;
    // A file that fails before any test runs (import error, failing hook) has no failed test: count it.
    const brokenFiles = report.testResults.filter(
      (file) =>
        file.status === 'failed' && !file.assertionResults.some((test) => test.status === 'failed'),
    );
    for (const file of brokenFiles)
      console.log(`✗ ${file.name}: ${file.message?.split('\n')[0] ?? 'failed'}`);
    failed += brokenFiles.length;
  } else {
    note = 'vitest wrote no report';
  }
  if (result.code !== 0 && failed === 0) {
    failed = 1;
    note = note ?? `vitest exited ${result.code} with no failed test in its report`;
  }
  results.push({
    suite: 'vitest',
    passed,
    failed,
    skipped,
    seconds: result.seconds,
    ...(note ? { note } : {}),
  });
}

/**
 * `pnpm bench --quick`: every benchmark in its short form, so none of them rots. It checks
 * that each one runs and prints its rows (and that ours and the baseline agree where a
 * benchmark compares outputs); figures are printed, never asserted.
 */
async function benchQuick(): Promise<void> {
  heading('bench --quick (every benchmark, short form)');
  await check('bench --quick (each benchmark runs and prints its rows)', async () => {
    const result = await run(bin('tsx'), ['infra/bench/src/main.ts', '--quick'], {
      timeoutMs: 10 * 60_000,
    });
    if (result.code === 0) {
      const table = result.output.slice(result.output.lastIndexOf('StreamAnchor benchmarks'));
      console.log(table.trimEnd());
    }
    return result;
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  heading('build (what the tests need)');
  const abi = await check('build contracts ABI (contracts/src/generated)', async () => {
    const built = await ensureContractsBuilt();
    return { ok: true, note: built ? 'built' : 'up to date' };
  });
  await check('build demo page (apps/web/dist)', async () => {
    if (!abi) return { ok: false, note: 'skipped: needs the contracts ABI' };
    const built = await ensureWebBuilt();
    return { ok: true, note: built ? 'built' : 'up to date' };
  });

  heading('lint (biome check)');
  await check('lint (biome check .)', () => run(bin('biome'), ['check', '.', '--colors=off']));
  await typecheck();
  await forge();
  await vitest();
  await benchQuick();

  const passed = results.reduce((sum, r) => sum + r.passed, 0);
  const failed = results.reduce((sum, r) => sum + r.failed, 0);
  heading('summary');
  for (const r of results) {
    if (r.failed === 0 && r.passed === 1 && r.suite.startsWith('typecheck ')) continue;
    const skipped = r.skipped ? `, ${r.skipped} skipped` : '';
    console.log(
      `${r.failed === 0 ? '✓' : '✗'} ${r.suite.padEnd(52)} ${r.passed} passed, ${r.failed} failed${skipped}  (${r.seconds.toFixed(1)} s)${r.note ? `  ${r.note}` : ''}`,
    );
  }
  const typechecks = results.filter((r) => r.suite.startsWith('typecheck '));
  if (typechecks.every((r) => r.failed === 0))
    console.log(
      `✓ typecheck: all ${typecheckTargets().length} packages, in ${typechecks.length} tsc programs`,
    );
  console.log(`total time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  // The closing line, read by CI: nothing may follow it.
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

main().catch((error: unknown) => {
  console.error(error);
  console.log('0 passed, 1 failed');
  process.exitCode = 1;
});
