import { contentHashOf } from '@streamanchor/protocol';
import { type Client, createPublicClient, type Hex, http } from 'viem';
import { getBlockNumber, getChainId } from 'viem/actions';
import { ChainFollowerError } from '../errors';
import type { FetchLike } from '../signaling';
import { fetchBatchPages, fetchTopicPage, type GatewayReader, pause } from './gateway';
import { AnchoredRecordLedger } from './ledger';
import { readBatchAnchoredLogs } from './logs';
import type { AnchoredBatchLog, ChainFollowerEvent, ProblemEvent, ServedRecord } from './types';
import { leavesAnchored, verifyBatch } from './verify-batch';

export interface ChainFollowerOptions {
  /** A JSON-RPC URL (HTTP) of a node you trust; or pass `publicClient`. */
  rpcUrl?: string;
  /** A viem client to read the chain with. */
  publicClient?: Client;
  /** The StreamAnchor contract you trust (not only what the gateway's /v1/info says). */
  contract: string;
  /** The gateway whose history is checked (GET /v1/batches/…, /v1/topics/…/records). */
  gatewayUrl: string;
  /** Bearer token: any valid token reads batches; payloads and `topics` need `subscribe`. */
  token?: string;
  /** The first block to read logs from (e.g. the deployment block of /v1/info). */
  fromBlock: number;
  /** A batch is read once its block has this many confirmations (its own counted); default 12. */
  confirmations?: number;
  /** Pause between two looks at the chain's head, ms; default 4000. */
  pollMs?: number;
  /** Most blocks one eth_getLogs spans; default 2000. */
  blockRange?: number;
  /** Ends once the logs through this block are checked and no served record is pending. */
  untilBlock?: number;
  /** Topics whose history (§3.8) is read, from their first record, and must be anchored. */
  topics?: readonly string[];
  /** How long a served record may be in no anchored batch before it is reported, ms; default 300000. */
  graceMs?: number;
  /** How long a batch the gateway answers 404 for is asked again before it is reported, ms; default 120000. */
  notServedAfterMs?: number;
  fetch?: FetchLike;
  signal?: AbortSignal;
  /** Called before each wait on a transient failure (chain or gateway), e.g. to log it. */
  onRetry?(detail: string, waitMs: number): void;
}

/**
 * A chain-first follower (docs/protocol.md §10.1): iterate it for the events. Single use.
 */
export interface ChainFollower extends AsyncIterable<ChainFollowerEvent> {
  /**
   * A record you were served (by a subscription, or history): it must turn up in an anchored
   * batch with the same fields within the grace period, else a `served_not_anchored` problem.
   */
  expectAnchored(record: ServedRecord): void;
  /** Served records not settled yet. */
  readonly pending: number;
  /** The next block whose logs are read. */
  readonly nextBlock: number;
  /** Ends the iteration (after the step under way). */
  stop(): void;
}

const MAX_BACKOFF_MS = 15_000;

/**
 * Follows the trusted feed with no session: reads `BatchAnchored` logs from `rpcUrl` in
 * bounded ranges up to head − confirmations + 1, fetches each batch's leaves and proofs from
 * the gateway, verifies them against the on-chain root (`verifyBatch`), and checks that every
 * served record (`expectAnchored`, `topics`) is in an anchored batch (`AnchoredRecordLedger`).
 * Yields a `batch` event per anchored batch, `problem` events for whatever does not hold, and
 * a `progress` event per range of blocks read. Only fetch and viem: runs in browsers too.
 *
 * The iteration throws ChainFollowerError when it cannot go on (the first chain read fails,
 * the gateway refuses the token, a topic's history cannot be read); failures worth another
 * try (network, 429, 503, RPC errors after the first read) are tried again, through `onRetry`.
 */
export function createChainFollower(options: ChainFollowerOptions): ChainFollower {
  if (!/^0x[0-9a-fA-F]{40}$/.test(options.contract)) {
    throw new ChainFollowerError(`Not a contract address: ${options.contract}`);
  }
  let client = options.publicClient;
  if (!client) {
    if (!options.rpcUrl)
      throw new ChainFollowerError('createChainFollower needs rpcUrl or publicClient');
    client = createPublicClient({ transport: http(options.rpcUrl, { retryCount: 2 }) });
  }
  const chain: Client = client;
  const contract = options.contract.toLowerCase() as Hex;
  const confirmations = Math.max(1, options.confirmations ?? 12);
  const pollMs = options.pollMs ?? 4000;
  const blockRange = Math.max(1, options.blockRange ?? 2000);
  const graceMs = options.graceMs ?? 300_000;
  const notServedAfterMs = options.notServedAfterMs ?? 120_000;

  const stopper = new AbortController();
  const signal = options.signal
    ? AbortSignal.any([options.signal, stopper.signal])
    : stopper.signal;
  const reader: GatewayReader = {
    gatewayUrl: options.gatewayUrl,
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    signal,
    ...(options.onRetry === undefined ? {} : { onRetry: options.onRetry }),
  };
  const ledger = new AnchoredRecordLedger();
  /** Problems found outside the loop (expectAnchored), yielded at its next turn. */
  const queued: ProblemEvent[] = [];
  /** Named batches looked up behind the scan already. */
  const lookedUp = new Set<string>();
  let nextBlock = options.fromBlock;
  let started = false;

  const expectAnchored = (record: ServedRecord) => {
    if (
      typeof record.payload === 'string' &&
      contentHashOf(record.payload) !== record.contentHash
    ) {
      queued.push({
        type: 'problem',
        kind: 'content_mismatch',
        ...(record.batchId ? { batchId: record.batchId } : {}),
        recordId: record.recordId,
        detail: `the payload served (topic ${record.topic}) does not hash to its contentHash ${record.contentHash}`,
      });
    }
    const problem = ledger.expect(record, Date.now());
    if (problem) queued.push(problem);
  };

  /** A chain read, tried again (after a growing pause) while it fails. */
  async function fromChain<T>(what: string, read: () => Promise<T>): Promise<T> {
    let backoffMs = 0;
    for (;;) {
      try {
        return await read();
      } catch (error) {
        if (signal.aborted) throw error;
        backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2 || 1000);
        options.onRetry?.(
          `${what}: ${(error as { shortMessage?: string }).shortMessage ?? (error as Error).message}`,
          backoffMs,
        );
        await pause(backoffMs, signal);
      }
    }
  }

  async function* checkBatch(
    log: AnchoredBatchLog,
    chainId: number,
  ): AsyncGenerator<ChainFollowerEvent> {
    const served = await fetchBatchPages(reader, log.batchId, { notServedAfterMs });
    if (!served.served) {
      yield { type: 'batch', ...log, verified: false, leaves: [] };
      yield {
        type: 'problem',
        kind: served.reason === 'malformed' ? 'malformed_response' : 'batch_not_served',
        batchId: log.batchId,
        blockNumber: log.blockNumber,
        detail: served.detail,
      };
      return;
    }
    const { batch, problems } = await verifyBatch(log, served.pages, { chainId });
    yield batch;
    yield* problems;
    yield* ledger.addBatch(
      log.batchId,
      log.blockNumber,
      leavesAnchored(problems) ? batch.leaves : [],
    );
  }

  /** Last position read per topic (`topics`); history is read from its first record. */
  const topicAfter = new Map<string, number>((options.topics ?? []).map((topic) => [topic, 0]));

  /** Reads each topic's history after what was read, page by page; each record is expected. */
  async function* readTopics(): AsyncGenerator<ChainFollowerEvent> {
    for (const [topic, last] of topicAfter) {
      let after = last;
      for (;;) {
        const page = await fetchTopicPage(reader, topic, after);
        for (const record of page.records) {
          expectAnchored({ ...record, topic });
          after = Math.max(after, record.position);
        }
        yield* queued.splice(0);
        if (page.next === null || page.records.length === 0) break;
      }
      topicAfter.set(topic, after);
    }
  }

  async function* run(): AsyncGenerator<ChainFollowerEvent> {
    let chainId: number;
    try {
      chainId = await getChainId(chain);
    } catch (error) {
      throw new ChainFollowerError('Could not read the chain', {
        details: (error as { shortMessage?: string }).shortMessage ?? (error as Error).message,
        cause: error,
      });
    }
    for (;;) {
      if (signal.aborted) return;
      const head = await fromChain('eth_blockNumber', async () =>
        Number(await getBlockNumber(chain, { cacheTime: 0 })),
      );
      // What was served before the logs are read: it is anchored by now, or soon.
      yield* readTopics();
      const safe = head - confirmations + 1;
      // Past untilBlock only while served records wait for their batch.
      const last =
        options.untilBlock !== undefined && ledger.pending === 0
          ? Math.min(safe, options.untilBlock)
          : safe;
      while (nextBlock <= last && !signal.aborted) {
        const toBlock = Math.min(last, nextBlock + blockRange - 1);
        const from = nextBlock;
        const logs = await fromChain('eth_getLogs', () =>
          readBatchAnchoredLogs(chain, { contract, fromBlock: from, toBlock }),
        );
        for (const log of logs) yield* checkBatch(log, chainId);
        nextBlock = toBlock + 1;
        yield { type: 'progress', toBlock, head };
      }
      // Batches named by served records, anchored before the first block read: look them up.
      for (const batchId of ledger.namedBatches()) {
        if (lookedUp.has(batchId) || options.fromBlock === 0) continue;
        lookedUp.add(batchId);
        const found = await fromChain('eth_getLogs', () =>
          readBatchAnchoredLogs(chain, {
            contract,
            fromBlock: 0,
            toBlock: options.fromBlock - 1,
            batchId,
          }),
        );
        for (const log of found) yield* checkBatch(log, chainId);
      }
      yield* queued.splice(0);
      yield* ledger.expired(Date.now(), graceMs);
      if (
        options.untilBlock !== undefined &&
        nextBlock > options.untilBlock &&
        ledger.pending === 0
      ) {
        return;
      }
      await pause(pollMs, signal);
    }
  }

  async function* events(): AsyncGenerator<ChainFollowerEvent> {
    if (started) throw new ChainFollowerError('A chain follower can be iterated once');
    started = true;
    try {
      yield* run();
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
  }

  return {
    [Symbol.asyncIterator]: events,
    expectAnchored,
    get pending() {
      return ledger.pending;
    },
    get nextBlock() {
      return nextBlock;
    },
    stop: () => stopper.abort(),
  };
}
