import { afterEach, describe, expect, test, vi } from 'vitest';
import type { Logger } from './logger';
import { AGAIN, createLoop, type Loop, type TickResult } from './loop';

/** A logger that keeps what `error` was given (the loop logs nothing else). */
function recordingLogger() {
  const errors: { fields: Record<string, unknown>; message: string }[] = [];
  const logger = {
    error: (fields: Record<string, unknown>, message: string) => errors.push({ fields, message }),
  } as unknown as Logger;
  return { logger, errors };
}

let loop: Loop | undefined;
afterEach(async () => {
  await loop?.stop();
  loop = undefined;
  vi.useRealTimers();
});

describe('createLoop', () => {
  test('default: ticks, waits the interval, and a wake runs the next tick at once', async () => {
    vi.useFakeTimers();
    let ticks = 0;
    loop = createLoop('test', recordingLogger().logger, 1000, async () => {
      ticks += 1;
      return undefined;
    });
    loop.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(ticks).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(ticks).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(ticks).toBe(2);
    loop.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(ticks).toBe(3);
  });

  test('behavior: AGAIN runs the next tick at once; a number waits that many ms instead', async () => {
    vi.useFakeTimers();
    const results: TickResult[] = [AGAIN, AGAIN, 50, undefined];
    const at: number[] = [];
    loop = createLoop('test', recordingLogger().logger, 1000, async () => {
      at.push(Date.now());
      return results.shift();
    });
    const start = Date.now();
    loop.start();
    await vi.advanceTimersByTimeAsync(1100);
    expect(at.map((t) => t - start)).toEqual([0, 0, 0, 50, 1050]);
  });

  test('behavior: a wake that comes while the tick runs skips the next wait', async () => {
    vi.useFakeTimers();
    let ticks = 0;
    loop = createLoop('test', recordingLogger().logger, 1000, async () => {
      ticks += 1;
      if (ticks === 1) loop?.wake();
      return undefined;
    });
    loop.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(ticks).toBe(2);
  });

  test('error: a failing tick is logged with its retry delay, doubling up to maxBackoffMs', async () => {
    vi.useFakeTimers();
    const { logger, errors } = recordingLogger();
    const failure = Object.assign(new Error('rpc down'), { details: { url: 'http://rpc' } });
    loop = createLoop(
      'sync',
      logger,
      100,
      async () => {
        throw failure;
      },
      { maxBackoffMs: 1000, maxBackoffDoublings: 10 },
    );
    loop.start();
    await vi.advanceTimersByTimeAsync(200 + 400 + 800 + 1000 + 1000);
    expect(errors.map((e) => e.fields.retryInMs)).toEqual([200, 400, 800, 1000, 1000, 1000]);
    expect(errors[0]).toEqual({
      message: 'sync tick failed',
      fields: {
        err: failure,
        details: { url: 'http://rpc' },
        loop: 'sync',
        failures: 1,
        retryInMs: 200,
      },
    });
  });

  test('behavior: stop() waits for the tick in progress, and no tick starts after it', async () => {
    let release: (() => void) | undefined;
    let ticks = 0;
    loop = createLoop('test', recordingLogger().logger, 10, async () => {
      ticks += 1;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return undefined;
    });
    loop.start();
    await vi.waitFor(() => expect(release).toBeDefined());
    let stopped = false;
    const stopping = loop.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stopped).toBe(false);
    release?.();
    await stopping;
    expect(loop.running).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(ticks).toBe(1);
  });
});
