/**
 * The command table and `run`, which dispatches one command line. Each command is loaded
 * only when it runs, so `token` and `verify` do not load WebRTC. Exit codes: 0 done (also
 * `subscribe` and `follow` ended by Ctrl-C), 1 a record refused / a receipt invalid / a problem
 * `follow` reported / another failure, 2 bad usage, 130 `publish` interrupted.
 */
import { CommandError, UsageError } from './args';
import type { Command, Io } from './command';

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  token: {
    summary: 'mint a bearer token (JWT_SECRET from the environment)',
    load: async () => (await import('./commands/token')).token,
  },
  publish: {
    summary: 'publish records (arguments or stdin lines); print acks, and receipts',
    load: async () => (await import('./commands/publish')).publish,
  },
  subscribe: {
    summary: "a topic's records: stored ones after a position, then live; resumes on its own",
    load: async () => (await import('./commands/subscribe')).subscribe,
  },
  verify: {
    summary: 'verify receipt files against a JSON-RPC endpoint',
    load: async () => (await import('./commands/verify')).verify,
  },
  follow: {
    summary: 'follow the chain: verify every anchored batch the gateway serves (no session)',
    load: async () => (await import('./commands/follow')).follow,
  },
};

export const USAGE = `usage: streamanchor <command> [options]   (streamanchor <command> --help for its options)

${Object.entries(COMMANDS)
  .map(([name, { summary }]) => `  ${name.padEnd(10)} ${summary}`)
  .join('\n')}`;

/** Runs one command line; resolves with the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? (line: string) => process.stderr.write(`${line}\n`) : io.out)(USAGE);
    return name === undefined ? 2 : 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    process.stderr.write(`streamanchor: unknown command "${name}"\n${USAGE}\n`);
    return 2;
  }
  const command = await entry.load();
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.warn(error.message);
      process.stderr.write(`${command.usage}\n`);
      return 2;
    }
    if (error instanceof CommandError) {
      io.warn(error.details ? `${error.message}\n${error.details}` : error.message);
      return 1;
    }
    io.warn(`unexpected error: ${(error as Error)?.stack ?? String(error)}`);
    return 1;
  }
}
