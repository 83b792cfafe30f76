/**
 * `streamanchor <command> …`: the StreamAnchor command line. bin/streamanchor.js runs this
 * file through tsx; `run` (run.ts) does the work, this file binds it to the process.
 */
import type { Io } from './command';
import { run } from './run';

function processIo(command: string): Io {
  let interruptHandler: ((signal: NodeJS.Signals) => void) | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted || !interruptHandler) process.exit(130);
    interrupted = true;
    interruptHandler(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    env: process.env,
    stdin: process.stdin,
    out: (line) => process.stdout.write(`${line}\n`),
    json: (value) => process.stdout.write(`${JSON.stringify(value)}\n`),
    warn: (line) => process.stderr.write(`streamanchor ${command}: ${line}\n`),
    onInterrupt: (handler) => {
      interruptHandler = handler;
    },
  };
}

// A closed stdout (`streamanchor subscribe … | head`) ends the command quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const argv = process.argv.slice(2);
const code = await run(argv, processIo(argv[0] ?? ''));
// Exit explicitly: HTTP keep-alive sockets (viem, fetch) would keep the process up a while.
process.stdout.write('', () => process.exit(code));
