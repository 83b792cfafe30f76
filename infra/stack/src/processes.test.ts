import { describe, expect, it } from 'vitest';
import { formatLogLine } from './processes';

describe('formatLogLine', () => {
  it('default: a pino line becomes level, message and the remaining fields', () => {
    const line = JSON.stringify({
      level: 30,
      time: 1,
      pid: 2,
      hostname: 'h',
      service: 'x',
      msg: 'hello',
      port: 8080,
    });
    expect(formatLogLine(line, 'x')).toBe('INFO  hello {"port":8080}');
  });

  it('behavior: names the service when another one logged it (the shared chain-services process)', () => {
    const line = JSON.stringify({ level: 40, service: 'chain-writer', msg: 'slow' });
    expect(formatLogLine(line, 'chain-services')).toBe('WARN  (chain-writer) slow');
  });

  it('behavior: other lines pass through unchanged', () => {
    expect(formatLogLine('plain text')).toBe('plain text');
    expect(formatLogLine('{not json')).toBe('{not json');
  });
});
