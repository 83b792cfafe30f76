import type { DemoRecord, Latency } from './demo';

/** The chart's series: milliseconds from publish() to each step. */
export const SERIES: readonly { key: keyof Latency; label: string; color: string }[] = [
  { key: 'ack', label: 'ack', color: '#3b5bdb' },
  { key: 'delivered', label: 'delivered to the subscriber', color: '#0ca678' },
  { key: 'anchored', label: 'anchored (receipt)', color: '#e8590c' },
  { key: 'final', label: 'final', color: '#7048e8' },
];

/** Records shown: the most recent ones (a canvas of a few hundred pixels holds no more). */
export const CHART_RECORDS = 500;

/** The acked records the chart shows, oldest first. */
export function chartRecords(records: readonly DemoRecord[]): DemoRecord[] {
  return records.filter((record) => record.latency.ack !== null).slice(-CHART_RECORDS);
}

/** The median of a series over `records` (null when none has it yet). */
export function median(records: readonly DemoRecord[], key: keyof Latency): number | null {
  const values = records
    .map((record) => record.latency[key])
    .filter((value): value is number => value !== null)
    .sort((a, b) => a - b);
  if (values.length === 0) return null;
  const middle = values.length >> 1;
  return values.length % 2 ? values[middle]! : (values[middle - 1]! + values[middle]!) / 2;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/**
 * Draws one dot per record and step: x the record (publish order), y the latency on a log
 * scale (ack and delivery take milliseconds, anchoring seconds: a linear axis would flatten
 * the first two). Sized to the canvas's CSS box, sharp on high-DPI screens.
 */
export function drawLatencyChart(canvas: HTMLCanvasElement, records: readonly DemoRecord[]): void {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0 || height === 0) return;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const context = canvas.getContext('2d');
  if (!context) return;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);

  const values = records.flatMap((record) =>
    SERIES.map((series) => record.latency[series.key]).filter((v): v is number => v !== null),
  );
  // Whole decades around the data: 10 ms … 10 s unless it reaches further.
  const low = Math.min(1, Math.floor(Math.log10(Math.max(1, Math.min(...values, 10)))));
  const high = Math.max(4, Math.ceil(Math.log10(Math.max(...values, 1))));
  const left = 48;
  const right = 8;
  const top = 8;
  const bottom = 20;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const y = (ms: number) =>
    top + plotHeight * (1 - (Math.log10(Math.max(ms, 10 ** low)) - low) / (high - low));
  const x = (index: number) =>
    left + (records.length <= 1 ? plotWidth / 2 : (plotWidth * index) / (records.length - 1));

  context.font = '11px system-ui, sans-serif';
  context.textBaseline = 'middle';
  context.textAlign = 'right';
  for (let decade = low; decade <= high; decade++) {
    const at = y(10 ** decade);
    context.strokeStyle = '#e3e6eb';
    context.beginPath();
    context.moveTo(left, at);
    context.lineTo(width - right, at);
    context.stroke();
    context.fillStyle = '#667085';
    const ms = 10 ** decade;
    context.fillText(ms < 1000 ? `${ms} ms` : `${ms / 1000} s`, left - 6, at);
  }
  context.textAlign = 'left';
  context.textBaseline = 'alphabetic';
  if (records.length === 0) {
    context.fillText('Publish records to see their latencies.', left + 8, top + plotHeight / 2);
    return;
  }
  context.fillText(`#${records[0]!.seq}`, left, height - 4);
  context.textAlign = 'right';
  context.fillText(`#${records.at(-1)!.seq}`, width - right, height - 4);

  const size = records.length > 200 ? 2 : 3;
  for (const series of SERIES) {
    context.fillStyle = series.color;
    records.forEach((record, index) => {
      const value = record.latency[series.key];
      if (value !== null) context.fillRect(x(index) - size / 2, y(value) - size / 2, size, size);
    });
  }
}
