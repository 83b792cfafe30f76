/** What a command gets from main.ts: its environment, stdin, and where to print. */
export interface Io {
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Writes one line on stdout. */
  out(line: string): void;
  /** Writes one JSON value as one line on stdout. */
  json(value: unknown): void;
  /** Writes one line on stderr, prefixed `streamanchor <command>: `. */
  warn(line: string): void;
  /**
   * Calls `handler` on the first SIGINT or SIGTERM instead of exiting (a second signal
   * exits at once, code 130). Without a handler a signal exits at once.
   */
  onInterrupt(handler: (signal: NodeJS.Signals) => void): void;
}

export interface Command {
  usage: string;
  /** Resolves with the exit code. Throws UsageError (exit 2) or CommandError (exit 1). */
  run(argv: string[], io: Io): Promise<number>;
}
