import type { Logger } from './logger';

export type ShutdownHook = () => Promise<void> | void;

export interface Shutdown {
  /** Registers a hook; hooks run in reverse order of registration (last started, first stopped). */
  add(hook: ShutdownHook): void;
  /** Runs every hook once. Later calls return the same promise. */
  run(reason: string): Promise<void>;
  readonly isShuttingDown: boolean;
  /** Aborted when shutdown starts, for loops that should stop waiting. */
  readonly signal: AbortSignal;
}

export function createShutdown({ logger }: { logger: Logger }): Shutdown {
  const hooks: ShutdownHook[] = [];
  const controller = new AbortController();
  let running: Promise<void> | undefined;
  return {
    add: (hook) => {
      hooks.push(hook);
    },
    run(reason) {
      if (running) return running;
      controller.abort(new Error(`shutdown: ${reason}`));
      logger.info({ reason }, 'shutting down');
      running = (async () => {
        for (const hook of hooks.reverse()) {
          try {
            await hook();
          } catch (error) {
            logger.error({ err: error }, 'shutdown hook failed');
          }
        }
      })();
      return running;
    },
    get isShuttingDown() {
      return running !== undefined;
    },
    get signal() {
      return controller.signal;
    },
  };
}

/**
 * Wires SIGINT/SIGTERM to a shutdown, for `main.ts` files only; a second signal exits at once,
 * unless `onSecondSignal` is given: then the second one calls it (to cut a graceful phase
 * short, such as a relay's drain) and a third one exits at once.
 */
export function exitOnSignals(
  shutdown: Shutdown,
  logger: Logger,
  options: { onSecondSignal?: () => void } = {},
): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 2 && options.onSecondSignal) {
      logger.warn({ signal }, 'second signal, cutting the shutdown short (a third exits now)');
      options.onSecondSignal();
      return;
    }
    if (signals > 1) {
      logger.warn({ signal }, 'second signal, exiting now');
      process.exit(130);
    }
    void shutdown.run(signal).then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
