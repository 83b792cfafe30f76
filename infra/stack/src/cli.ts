/**
 * `pnpm dev`: the whole StreamAnchor stack on this machine, in the foreground.
 * Ctrl-C stops every service, then anvil and any Redis it started.
 */
import { ConfigError } from '@streamanchor/service-kit';
import { BuildError, ensureContractsBuilt, ensureWebBuilt } from './build';
import { loadStackConfig } from './config';
import { StackError } from './errors';
import type { Stack } from './index';

function fail(error: unknown): never {
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else if (error instanceof StackError || error instanceof BuildError) {
    console.error(`\n✗ ${error.shortMessage}`);
    if (error.details) console.error(error.details);
  } else {
    console.error(error);
  }
  process.exit(1);
}

function summary(stack: Stack): string {
  const database =
    stack.database.kind === 'postgres'
      ? 'Postgres (DATABASE_URL); writer and indexer run as separate processes'
      : `PGlite in ${stack.database.dir} (reset at each start, like the chain); writer and indexer share one process`;
  return [
    '',
    '  StreamAnchor is running.',
    '',
    `  Demo page     ${stack.demoUrl}`,
    `  API           ${stack.urls.api}  (GET /v1/info, POST /v1/sessions)`,
    `  Chain RPC     ${stack.urls.rpc}  (anvil, chain id ${stack.chainId})`,
    `  Contract      ${stack.contractAddress}  (deployed in block ${stack.deploymentBlock})`,
    `  Token         ${stack.token}`,
    '                (subject "demo", topics ["demo"], subscribe ["demo"], valid 24 h; `pnpm run token` mints others)',
    `  Redis         ${stack.redis.url}  prefix "${stack.redis.prefix}"${stack.redis.origin === 'started' ? ' (started by the stack)' : ''}`,
    `  Database      ${database}`,
    '',
    '  Ctrl-C stops everything.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  let stack: Stack | undefined;
  let interrupted = false;
  let firstSignalAt = 0;
  const startup = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      // One Ctrl-C often arrives twice: from the terminal and relayed by pnpm or tsx.
      if (Date.now() - firstSignalAt < 2000) return;
      console.error(`[stack] second ${signal}: killing everything now`);
      process.exit(130); // the exit hook SIGKILLs the children; the reaper catches the rest
    }
    interrupted = true;
    firstSignalAt = Date.now();
    console.log(`\n[stack] ${signal}: stopping…`);
    // During start-up: startStack notices the abort, stops what it started, and rejects.
    if (!stack) {
      startup.abort();
      return;
    }
    void stack.stop().then(() => {
      console.log('[stack] stopped');
      process.exit(0);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // Fail fast on a bad variable, then build: ./index imports the contracts' generated ABI,
    // which a fresh clone does not have yet, so it is loaded only after the build.
    loadStackConfig(process.env);
    if (await ensureContractsBuilt())
      console.log('[stack] built the contracts ABI (contracts/src/generated)');
    if (await ensureWebBuilt()) console.log('[stack] built the demo page (apps/web/dist)');
    const { startStack } = await import('./index');
    stack = await startStack({ signal: startup.signal, build: false });
  } catch (error) {
    if (interrupted) {
      console.log('[stack] stopped');
      process.exit(0);
    }
    fail(error);
  }
  if (interrupted) {
    await stack.stop();
    console.log('[stack] stopped');
    process.exit(0);
  }
  console.log(summary(stack));
  const failure = await stack.failed;
  console.error(
    `\n✗ ${failure.service} exited unexpectedly (${failure.signal ?? `exit code ${failure.code}`}); the stack stopped.`,
  );
  process.exit(1);
}

void main();
