/**
 * `streamanchor follow`: the chain-first follower (docs/protocol.md §10.1), with no session:
 * BatchAnchored logs from any RPC, each batch's leaves and proofs over HTTP, each verified
 * against the on-chain root, and the records a topic's history serves checked to be in an
 * anchored batch (the SDK's `createChainFollower`, packages/client/src/chain-follower/).
 * `subscribe` is the topic subscriber.
 */
import { setMaxListeners } from 'node:events';
import {
  type BatchEvent,
  ChainFollowerError,
  createChainFollower,
  type ProblemEvent,
} from '@streamanchor/client';
import { type InfoResponse, TOPIC_PATTERN } from '@streamanchor/protocol';
import { CommandError, integer, parseCommandArgs, required, seconds, UsageError } from '../args';
import type { Command, Io } from '../command';
import { describeError } from '../session';

export const FOLLOW_USAGE = `usage: streamanchor follow --rpc <url> --url <gateway> --token <token> [--contract <address>] [--from-block <n>] [--confirmations <n>] [--topic <topic> …] [--grace <s>] [--poll <s>] [--until-block <n> | --count <n>] [--no-records]

Follows the trusted feed without a session and without trusting the gateway
(docs/protocol.md §10.1): reads the contract's BatchAnchored(batchId, merkleRoot,
recordCount) logs over --rpc, fetches each batch's leaves and proofs from the gateway
(GET /v1/batches/<id>), checks that they are exactly the batch (leaf count, leaf indexes,
the Merkle root rebuilt from all of them), each leaf hash and proof, and that each payload
served hashes to its contentHash. With --topic, it also reads the topic's history
(GET /v1/topics/<topic>/records) and reports every record served that is in no anchored
batch (with the same topic, subject, contentHash and acceptedAt) within --grace.
  --rpc            a JSON-RPC endpoint you trust
  --contract       the StreamAnchor contract you trust; without it the one GET /v1/info
                   names is used, so give it unless you trust the gateway
  --from-block     the first block to read (default: the deployment block /v1/info names)
  --confirmations  a batch is read once its block has this many confirmations, its own
                   counted (default 12)
  --topic          a topic whose served records must be anchored (repeat for more; the
                   token must grant subscribing to it)
  --grace          seconds a served record may be in no anchored batch (default 300)
  --poll           seconds between two looks at the chain head (default 4)
  --until-block    exits once the logs through this block are checked (and every served
                   record found or past its grace)
  --count          exits after this many batches
  --no-records     prints no record lines
Prints JSON lines: per batch {"type":"batch","batchId","merkleRoot","recordCount",
"blockNumber","blockHash","txHash","logIndex","verified"}, then per leaf
{"type":"record","batchId","leafIndex","recordId","topic","subject","contentHash",
"acceptedAt","position","payload"} (payload null when not served to the token or pruned),
and per problem {"type":"problem","kind","batchId","recordId","blockNumber","detail"}, kind
one of root_mismatch, leaf_count, leaf_gap, bad_leaf_hash, bad_proof, content_mismatch,
anchor_mismatch, malformed_response, batch_not_served, served_not_anchored,
duplicate_record. Runs until Ctrl-C (or --until-block, --count). Exit code 1 when any
problem was reported (or the chain or the gateway could not be read), 2 on bad usage.
Environment: STREAMANCHOR_URL and STREAMANCHOR_TOKEN stand in for --url and --token.`;

const TOPIC_NAME = new RegExp(TOPIC_PATTERN);

export const follow: Command = {
  usage: FOLLOW_USAGE,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, {
      rpc: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      contract: { type: 'string' },
      'from-block': { type: 'string' },
      confirmations: { type: 'string' },
      topic: { type: 'string', multiple: true },
      grace: { type: 'string' },
      poll: { type: 'string' },
      'until-block': { type: 'string' },
      count: { type: 'string' },
      'no-records': { type: 'boolean' },
    });
    if (values.help) {
      io.out(FOLLOW_USAGE);
      return 0;
    }
    const rpcUrl = required(values.rpc, '--rpc');
    try {
      new URL(rpcUrl);
    } catch {
      throw new UsageError(`--rpc "${rpcUrl}" is not a URL`);
    }
    const url = required(values.url, '--url', { name: 'STREAMANCHOR_URL', values: io.env });
    const token = required(values.token, '--token', { name: 'STREAMANCHOR_TOKEN', values: io.env });
    if (values.contract !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(values.contract)) {
      throw new UsageError(
        `--contract "${values.contract}" is not an address (0x + 40 hex digits)`,
      );
    }
    const topics = values.topic ?? [];
    for (const topic of topics) {
      if (!TOPIC_NAME.test(topic)) {
        throw new UsageError(`--topic "${topic}" is not a topic name (${TOPIC_PATTERN})`);
      }
    }
    let fromBlock = integer(values['from-block'], '--from-block', 0);
    const confirmations = integer(values.confirmations, '--confirmations', 1) ?? 12;
    const graceMs = seconds(values.grace, '--grace') ?? 300_000;
    const pollMs = seconds(values.poll, '--poll') ?? 4000;
    const untilBlock = integer(values['until-block'], '--until-block', 0);
    const count = integer(values.count, '--count', 1);
    if (untilBlock !== undefined && count !== undefined) {
      throw new UsageError('give --until-block or --count, not both');
    }

    let contract = values.contract;
    if (contract === undefined || fromBlock === undefined) {
      const info = await readInfo(url);
      if (contract === undefined) {
        contract = info.contract;
        io.warn(
          `following the contract the gateway names, ${contract} (give --contract to follow the one you trust)`,
        );
      }
      fromBlock ??= info.deploymentBlock;
    }

    const stop = new AbortController();
    setMaxListeners(0, stop.signal);
    io.onInterrupt(() => stop.abort());
    const follower = createChainFollower({
      rpcUrl,
      contract,
      gatewayUrl: url,
      token,
      fromBlock,
      confirmations,
      pollMs,
      graceMs,
      topics,
      ...(untilBlock === undefined ? {} : { untilBlock }),
      signal: stop.signal,
      onRetry: (detail, waitMs) => io.warn(`${detail}; again in ${waitMs / 1000} s`),
    });

    let batches = 0;
    let verified = 0;
    let records = 0;
    let problems = 0;
    try {
      for await (const event of follower) {
        if (event.type === 'batch') {
          printBatch(io, event, !values['no-records']);
          batches += 1;
          records += event.leaves.length;
          if (event.verified) verified += 1;
          if (count !== undefined && batches >= count) break;
        } else if (event.type === 'problem') {
          printProblem(io, event);
          problems += 1;
        }
      }
    } catch (error) {
      if (error instanceof ChainFollowerError) {
        throw new CommandError(describeError(error));
      }
      throw error;
    }
    const pending = follower.pending;
    io.warn(
      `${verified} of ${batches} batch${batches === 1 ? '' : 'es'} verified (${records} record${records === 1 ? '' : 's'}), ${problems} problem${problems === 1 ? '' : 's'}${pending > 0 ? `; ${pending} served record${pending === 1 ? '' : 's'} not checked yet` : ''}`,
    );
    return problems > 0 ? 1 : 0;
  },
};

function printBatch(io: Io, batch: BatchEvent, withRecords: boolean): void {
  const { leaves, type, ...anchor } = batch;
  io.json({ type, ...anchor });
  if (!withRecords) return;
  for (const leaf of leaves) {
    const { payload, contentMatches, leafHash: _leafHash, ...fields } = leaf;
    io.json({
      type: 'record',
      batchId: batch.batchId,
      ...fields,
      // The canonical payload text as its JSON value; as served when it does not hash right.
      payload: payload !== null && contentMatches ? JSON.parse(payload) : payload,
    });
  }
}

function printProblem(io: Io, problem: ProblemEvent): void {
  io.json(problem);
  io.warn(
    `${problem.kind}${problem.batchId ? ` (batch ${problem.batchId})` : ''}${problem.recordId ? ` (record ${problem.recordId})` : ''}: ${problem.detail}`,
  );
}

/** GET /v1/info: the contract and deployment block the gateway names. */
async function readInfo(url: string): Promise<Pick<InfoResponse, 'contract' | 'deploymentBlock'>> {
  const infoUrl = `${url.replace(/\/+$/, '')}/v1/info`;
  let body: unknown;
  try {
    const response = await fetch(infoUrl, { headers: { Accept: 'application/json' } });
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    body = await response.json();
  } catch (error) {
    throw new CommandError(
      `could not read ${infoUrl} (${describeError(error)}): give --contract and --from-block`,
    );
  }
  const { contract, deploymentBlock } = (body ?? {}) as Partial<InfoResponse>;
  if (
    typeof contract !== 'string' ||
    !/^0x[0-9a-fA-F]{40}$/.test(contract) ||
    !Number.isSafeInteger(deploymentBlock)
  ) {
    throw new CommandError(`${infoUrl} names no contract and deployment block`);
  }
  return { contract, deploymentBlock: deploymentBlock! };
}
