import type { Logger } from './logger';

export interface Loop {
  start(): void;
  /** Ends the loop after the current tick; resolves once it returned. */
  stop(): Promise<void>;
  /** Runs the next tick now instead of after the interval. */
  wake(): void;
  readonly running: boolean;
}

/** Returned by a tick to run the next one at once (there is more work). */
export const AGAIN = Symbol('again');
/**
 * AGAIN; undefined: the next tick after the interval; a number: the next tick after that
 * many ms instead (e.g. when the tick knows when its work falls due). `wake()` still runs
 * it sooner.
 */
export type TickResult = typeof AGAIN | undefined | number;

export interface LoopOptions {
  /** Longest pause after repeated failures (ms; default 10 000). */
  maxBackoffMs?: number;
  /** Failures after which the pause stops doubling (default 6: 64 × the interval). */
  maxBackoffDoublings?: number;
}

/**
 * A poll loop: runs `tick`, then waits `intervalMs` or until `wake()` (a wake while the tick
 * runs skips the next wait). A tick that throws is logged and retried after the interval,
 * doubled for each failure in a row up to the options' caps.
 */
export function createLoop(
  name: string,
  logger: Logger,
  intervalMs: number,
  tick: () => Promise<TickResult>,
  { maxBackoffMs = 10_000, maxBackoffDoublings = 6 }: LoopOptions = {},
): Loop {
  let running = false;
  let done: Promise<void> | undefined;
  let wakeUp: (() => void) | undefined;
  let woken = false;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken || !running) {
        woken = false;
        resolve();
        return;
      }
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        wakeUp = undefined;
        woken = false;
        resolve();
      }
      wakeUp = finish;
    });

  async function run(): Promise<void> {
    let failures = 0;
    while (running) {
      let result: TickResult;
      try {
        result = await tick();
        failures = 0;
      } catch (error) {
        failures += 1;
        const retryInMs = Math.min(
          intervalMs * 2 ** Math.min(failures, maxBackoffDoublings),
          maxBackoffMs,
        );
        logger.error(
          {
            err: error,
            details: (error as { details?: unknown }).details,
            loop: name,
            failures,
            retryInMs,
          },
          `${name} tick failed`,
        );
        await sleep(retryInMs);
        continue;
      }
      if (result !== AGAIN) await sleep(typeof result === 'number' ? result : intervalMs);
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      done = run();
    },
    async stop() {
      running = false;
      wakeUp?.();
      await done;
    },
    wake() {
      woken = true;
      wakeUp?.();
    },
    get running() {
      return running;
    },
  };
}
