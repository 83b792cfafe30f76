/**
 * `pnpm bench [--quick] [--only id,id]`: every benchmark of BENCHES, one after the other
 * (never two at once: they would measure each other), then one table of every row:
 * ours, baseline, ratio (min / median / max) and the bar each figure is held to.
 *
 * The table is also written to test-results/bench.md and the rows to test-results/bench.json.
 * Exits non-zero when a benchmark crashed or printed no row; a bar not met is reported, not
 * failed (these machines are shared: speed is read from the ratios, never asserted).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchRow, benchOption, formatTable, isQuick, parseRows } from '@streamanchor/testing';
import { BENCHES, type BenchSpec } from './benches';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const option = (name: string) => benchOption(name);

function runBench(
  spec: BenchSpec,
  quick: boolean,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(
      join(REPO_ROOT, 'node_modules', '.bin', 'tsx'),
      [spec.script, ...(quick ? spec.quick : spec.full)],
      { cwd: REPO_ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    child.on('error', (error) => {
      output += `\ncould not start: ${error.message}\n`;
    });
    child.on('close', (code) => done({ code, output }));
  });
}

async function main(): Promise<void> {
  const quick = isQuick();
  const only = option('--only')?.split(',').filter(Boolean);
  const unknown = only?.filter((id) => !BENCHES.some((spec) => spec.id === id)) ?? [];
  if (unknown.length > 0) {
    console.error(
      `unknown benchmark ${unknown.join(', ')}; known: ${BENCHES.map((s) => s.id).join(', ')}`,
    );
    process.exitCode = 2;
    return;
  }
  const selected = BENCHES.filter((spec) => !only || only.includes(spec.id));
  const started = Date.now();
  const rows: BenchRow[] = [];
  const broken: string[] = [];
  for (const spec of selected) {
    console.log(`\n━━ bench ${spec.id}: ${spec.title}${quick ? ' (quick)' : ''}`);
    const benchStarted = Date.now();
    const { code, output } = await runBench(spec, quick);
    const found = parseRows(output);
    rows.push(...found);
    const seconds = ((Date.now() - benchStarted) / 1000).toFixed(0);
    if (code !== 0 || found.length === 0) {
      broken.push(spec.id);
      console.log(`✗ ${spec.id}: exited ${code}, ${found.length} rows (${seconds} s)`);
    } else {
      console.log(`✓ ${spec.id}: ${found.length} rows (${seconds} s)`);
    }
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}`;
  const table = formatTable(rows);
  const header = `StreamAnchor benchmarks${quick ? ' (quick)' : ''}, ${new Date().toISOString().slice(0, 10)}, ${machine}`;
  console.log(`\n${header}\n\n${table}\n`);
  const outDir = join(REPO_ROOT, 'test-results');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'bench.md'), `${header}\n\n${table}\n`);
  writeFileSync(join(outDir, 'bench.json'), `${JSON.stringify({ header, rows }, null, 2)}\n`);
  const unmet = rows.filter((row) => row.bar && !row.bar.met).map((row) => row.id);
  console.log(
    `${rows.length} rows from ${selected.length - broken.length} of ${selected.length} benchmarks in ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s; bars not met: ${unmet.length > 0 ? unmet.join(', ') : 'none'}`,
  );
  if (broken.length > 0) {
    console.log(`broken: ${broken.join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
