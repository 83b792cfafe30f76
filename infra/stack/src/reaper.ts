/**
 * The stack's safety net against orphans. The stack starts its services, anvil and maybe a
 * redis-server in their own process groups (so a terminal's Ctrl-C reaches only the stack,
 * which stops them in order). If the stack itself dies without stopping them (SIGKILL, a
 * test runner tearing its worker down), they would run on forever. This small process is
 * connected to the stack by an IPC channel and is told every pid the stack starts; when the
 * channel closes without a `done` message, it stops them: services first (SIGTERM, then
 * SIGKILL after a grace period), then the rest.
 */
interface Message {
  type: 'watch' | 'done';
  pid?: number;
  /** Services are stopped before infrastructure (anvil, redis). */
  tier?: 'service' | 'infra';
}

const watched = new Map<number, 'service' | 'infra'>();
let done = false;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function stopAll(pids: number[], graceMs: number): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
  }
  const deadline = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 100));
  for (const pid of pids.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}

process.on('message', (message: Message) => {
  if (message.type === 'done') done = true;
  else if (message.type === 'watch' && message.pid)
    watched.set(message.pid, message.tier ?? 'service');
});

process.on('disconnect', () => {
  if (done) process.exit(0);
  const tier = (name: 'service' | 'infra') =>
    [...watched].filter(([, t]) => t === name).map(([pid]) => pid);
  void (async () => {
    await stopAll(tier('service'), 10_000);
    await stopAll(tier('infra'), 3_000);
    process.exit(0);
  })();
});

// A terminal's Ctrl-C is the stack's business, not ours.
process.on('SIGINT', () => {});
