/**
 * Throughput benchmark (not a test): a node-datachannel client in a child process
 * publishes N records over one data channel to a relay in this process; the relay
 * validates, hashes and queues them on the real `records` queue in Redis, and acks each.
 * Prints records/s acked end to end (first send → last ack, measured by the client).
 *
 *   node --import tsx apps/rtc-relay/bench/throughput.ts [records-per-run]
 *
 * Needs Redis at TEST_REDIS_URL (default redis://127.0.0.1:6379); cleans its prefix up.
 */
import nodeDataChannel from 'node-datachannel';
import { ClientProcess } from '../test/support/client';
import { startTestRelay } from '../test/support/relay';

const count = Number(process.argv[2] ?? 20_000);

const relay = await startTestRelay({
  LOG_LEVEL: 'warn',
  MAX_MESSAGE_BYTES: '65536',
  MAX_PAYLOAD_BYTES: '16384',
  HEARTBEAT_MS: '2000',
});
const client = await ClientProcess.spawn();
try {
  await relay.connect(client);
  await client.publishMany({ count: 2000, payloadBytes: 200, topic: 'demo', idPrefix: 'warm' });
  for (const payloadBytes of [1024, 200]) {
    for (let round = 1; round <= 2; round++) {
      const summary = await client.publishMany({
        count,
        payloadBytes,
        topic: 'demo',
        idPrefix: `r${payloadBytes}-${round}-`,
        timeoutMs: 300_000,
      });
      const perSecond = Math.round((summary.acks / summary.elapsedMs) * 1000);
      console.log(
        `payload ${String(payloadBytes).padStart(4)} B, run ${round}: ${summary.acks} acked, ${summary.nacks} nacked ` +
          `in ${summary.elapsedMs} ms → ${perSecond} records/s`,
      );
    }
  }
  const stats = relay.app.stats();
  console.log(
    `jobs added: ${stats.jobsAdded}, records queued: ${stats.recordsQueued} ` +
      `(${(stats.recordsQueued / stats.jobsAdded).toFixed(1)} records/job)`,
  );
} finally {
  await client.stop();
  await relay.close();
  nodeDataChannel.cleanup();
}
