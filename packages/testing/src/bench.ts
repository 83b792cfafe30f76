/**
 * The benchmark harness every `pnpm bench` figure goes through.
 *
 * A benchmark script measures our path and its baseline side by side in one run, alternating
 * (round i runs ours first when i is even, the baseline first when it is odd, so neither
 * always gets the warmer or the quieter slot), and reports one row per figure with
 * `reportRow`. The row is printed for people and, on its own line, as JSON behind
 * `BENCH_ROW_PREFIX`, which `pnpm bench` (infra/bench) collects into one table.
 *
 * Ratios are per round (ours_i / baseline_i), so a noisy neighbour slows both sides of one
 * ratio; the figure to read is the median ratio. No benchmark asserts on speed: a bar that
 * is not met is printed as such, never turned into a failure.
 */

export interface Figure {
  min: number;
  median: number;
  max: number;
}

/** One line of the benchmark table. */
export interface BenchRow {
  /** Stable id (`merkle`, `relay-ingest-node`…), for `pnpm bench --only`. */
  id: string;
  /** What is measured, for people: "Merkle tree + all proofs, 1,000 leaves". */
  what: string;
  /** Unit of `ours` and `baseline`: "records/s", "ms"… */
  unit: string;
  /** Whether a larger figure is better (rates) or a smaller one (latencies, bytes). */
  better: 'higher' | 'lower';
  ours: Figure;
  /** The real thing a user would compare with, measured in the same run. */
  baseline?: Figure & { name: string };
  /** ours / baseline per round, then min / median / max. */
  ratio?: Figure;
  /** The bar for this figure, and whether the median met it. */
  bar?: { text: string; met: boolean };
  note?: string;
}

export const BENCH_ROW_PREFIX = '@@bench-row ';

/** `--quick` on the command line or BENCH_QUICK=1: the short form CI runs so benchmarks never rot. */
export function isQuick(argv: readonly string[] = process.argv): boolean {
  return argv.includes('--quick') || process.env.BENCH_QUICK === '1';
}

/** The value of a benchmark's `--name value` or `--name=value` argument, if given. */
export function benchOption(
  name: string,
  argv: readonly string[] = process.argv,
): string | undefined {
  const at = argv.indexOf(name);
  if (at >= 0) return argv[at + 1];
  return argv.find((arg) => arg.startsWith(`${name}=`))?.slice(name.length + 1);
}

export function summarize(values: readonly number[]): Figure {
  if (values.length === 0) throw new Error('summarize: no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { min: sorted[0]!, median, max: sorted.at(-1)! };
}

/** The p-th percentile (0–100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export interface Alternated {
  ours: number[];
  baseline: number[];
  /** ours[i] / baseline[i]. */
  ratios: number[];
}

/**
 * Runs `ours` and `baseline` `rounds` times each, alternating which goes first, and returns
 * every figure. Each function measures one run and returns its figure (a rate or a time).
 */
export async function alternate(options: {
  rounds: number;
  ours: (round: number) => Promise<number> | number;
  baseline: (round: number) => Promise<number> | number;
}): Promise<Alternated> {
  const result: Alternated = { ours: [], baseline: [], ratios: [] };
  for (let round = 0; round < options.rounds; round++) {
    let ours: number;
    let baseline: number;
    if (round % 2 === 0) {
      ours = await options.ours(round);
      baseline = await options.baseline(round);
    } else {
      baseline = await options.baseline(round);
      ours = await options.ours(round);
    }
    result.ours.push(ours);
    result.baseline.push(baseline);
    result.ratios.push(ours / baseline);
  }
  return result;
}

/** Builds a row from alternated runs; `bar.ratio` is met when the median ratio is on its good side. */
export function compareRow(options: {
  id: string;
  what: string;
  unit: string;
  better: 'higher' | 'lower';
  baselineName: string;
  runs: Alternated;
  bar?: { text: string; ratio: number };
  note?: string;
}): BenchRow {
  const ratio = summarize(options.runs.ratios);
  const row: BenchRow = {
    id: options.id,
    what: options.what,
    unit: options.unit,
    better: options.better,
    ours: summarize(options.runs.ours),
    baseline: { name: options.baselineName, ...summarize(options.runs.baseline) },
    ratio,
  };
  if (options.bar) {
    const met =
      options.better === 'higher'
        ? ratio.median >= options.bar.ratio
        : ratio.median <= options.bar.ratio;
    row.bar = { text: options.bar.text, met };
  }
  if (options.note) row.note = options.note;
  return row;
}

function number(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 100) return Math.round(value).toLocaleString('en-US');
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatFigure(figure: Figure): string {
  return `${number(figure.min)} / ${number(figure.median)} / ${number(figure.max)}`;
}

/** Prints the row for people and as one JSON line that `pnpm bench` collects. */
export function reportRow(row: BenchRow): void {
  const parts = [`${row.what}: ours ${formatFigure(row.ours)} ${row.unit}`];
  if (row.baseline) parts.push(`${row.baseline.name} ${formatFigure(row.baseline)} ${row.unit}`);
  if (row.ratio) parts.push(`ratio ${formatFigure(row.ratio)}`);
  if (row.bar) parts.push(`bar ${row.bar.text}: ${row.bar.met ? 'met' : 'NOT met'}`);
  console.log(`${parts.join(' · ')} (min / median / max)`);
  console.log(`${BENCH_ROW_PREFIX}${JSON.stringify(row)}`);
}

/** Every row a benchmark printed, in order. */
export function parseRows(output: string): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const line of output.split('\n')) {
    const at = line.indexOf(BENCH_ROW_PREFIX);
    if (at >= 0) rows.push(JSON.parse(line.slice(at + BENCH_ROW_PREFIX.length)) as BenchRow);
  }
  return rows;
}

/** One markdown table: what, ours, baseline, ratio (each min / median / max), bar. */
export function formatTable(rows: readonly BenchRow[]): string {
  const lines = [
    '| what | ours (min / median / max) | baseline (min / median / max) | ratio | bar |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const row of rows) {
    const baseline = row.baseline
      ? `${row.baseline.name}: ${formatFigure(row.baseline)} ${row.unit}`
      : '—';
    const ratio = row.ratio ? formatFigure(row.ratio) : '—';
    const bar = row.bar ? `${row.bar.text} ${row.bar.met ? '✓' : '✗'}` : '—';
    const what = row.note ? `${row.what} (${row.note})` : row.what;
    lines.push(
      `| ${what} | ${formatFigure(row.ours)} ${row.unit} | ${baseline} | ${ratio} | ${bar} |`,
    );
  }
  return lines.join('\n');
}
