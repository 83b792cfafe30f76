/**
 * `streamanchor verify`: checks receipts against any JSON-RPC endpoint with the SDK's
 * `verifyReceipt` (packages/client/src/verify.ts; docs/protocol.md §10) and prints a verdict
 * per receipt.
 */
import { readFile } from 'node:fs/promises';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { createReceiptVerifier, type Receipt as ReceiptType } from '@streamanchor/client';
import { Receipt } from '@streamanchor/protocol';
import { CommandError, integer, parseCommandArgs, required, UsageError } from '../args';
import type { Command, Io } from '../command';
import { describeError } from '../session';

export const VERIFY_USAGE = `usage: streamanchor verify --rpc <url> [--contract <address>] [--chain-id <id>] [--finality-depth <n>] <receipt.json ...>

Verifies receipts without trusting StreamAnchor's servers: the leaf hash, the Merkle proof,
the contract's BatchAnchored(batchId, merkleRoot, recordCount) event in the receipt's block
and transaction (read over --rpc), and that block still being canonical.
Each file ('-' for stdin) holds a receipt, {"receipt":{…}} (as \`streamanchor publish
--receipts\` prints), an array of these, or JSON lines of these (other lines, such as
acks, are skipped).
  --contract        the StreamAnchor contract you trust; without it any contract the
                    receipt names is accepted, so give it unless you trust the receipt
  --chain-id        the chain the receipt must name (the RPC's chain id is always checked)
  --finality-depth  with it, a receipt claiming final must have that many confirmations
Prints one JSON line per receipt: {"verdict","source","recordId","status",…}, where verdict
is "valid" (with "confirmations"), "invalid" or "unverified" (the chain could not be read),
the last two with "problems":[…]. Exit code 1 when any receipt is not valid (or a file
holds none), 2 on bad usage.`;

const receiptChecker = TypeCompiler.Compile(Receipt);
/** Receipts verified at once (one eth_getLogs per batch is cached across them). */
const CONCURRENCY = 16;

/** One receipt-like value found in a file, with where it was. */
export interface FoundReceipt {
  source: string;
  value: unknown;
}

/**
 * The receipts of one file's text: a JSON value (a receipt, `{ receipt }`, or an array of
 * these), else JSON lines of these. Objects with another `type` (acks, nacks) are skipped.
 * Throws CommandError when the text is neither JSON nor JSON lines.
 */
export function receiptsIn(text: string, name: string): FoundReceipt[] {
  let whole: unknown;
  let parsed = false;
  try {
    whole = JSON.parse(text);
    parsed = true;
  } catch {
    // Not one JSON value: JSON lines?
  }
  if (parsed) return collect(whole, name);
  const found: FoundReceipt[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index]!.trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new CommandError(
        `${name}: line ${index + 1} is not JSON (${(error as Error).message})`,
      );
    }
    found.push(...collect(value, `${name}:${index + 1}`));
  }
  return found;
}

function collect(value: unknown, source: string): FoundReceipt[] {
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => collect(item, `${source}[${index}]`));
  }
  if (typeof value === 'object' && value !== null) {
    const object = value as Record<string, unknown>;
    if ('receipt' in object) return [{ source, value: object.receipt }];
    if (typeof object.type === 'string') return [];
  }
  return [{ source, value }];
}

export const verify: Command = {
  usage: VERIFY_USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        rpc: { type: 'string' },
        contract: { type: 'string' },
        'chain-id': { type: 'string' },
        'finality-depth': { type: 'string' },
      },
      { positionals: true },
    );
    if (values.help) {
      io.out(VERIFY_USAGE);
      return 0;
    }
    const rpcUrl = required(values.rpc, '--rpc');
    try {
      new URL(rpcUrl);
    } catch {
      throw new UsageError(`--rpc "${rpcUrl}" is not a URL`);
    }
    if (values.contract !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(values.contract)) {
      throw new UsageError(
        `--contract "${values.contract}" is not an address (0x + 40 hex digits)`,
      );
    }
    const expectedChainId = integer(values['chain-id'], '--chain-id', 1);
    const finalityDepth = integer(values['finality-depth'], '--finality-depth', 1);
    if (positionals.length === 0) throw new UsageError('name at least one receipt file (or -)');

    let emptyFiles = 0;
    const found: FoundReceipt[] = [];
    for (const file of positionals) {
      const name = file === '-' ? 'stdin' : file;
      let text: string;
      try {
        text = file === '-' ? await readAll(io.stdin) : await readFile(file, 'utf8');
      } catch (error) {
        throw new CommandError(`cannot read ${name}: ${(error as Error).message}`);
      }
      const receipts = receiptsIn(text, name);
      if (receipts.length === 0) {
        io.warn(`${name} holds no receipt`);
        emptyFiles += 1;
      }
      found.push(...receipts);
    }

    const verifier = createReceiptVerifier({
      rpcUrl,
      expectedContract: values.contract,
      expectedChainId,
      finalityDepth,
    });
    const check = async ({ source, value }: FoundReceipt): Promise<Record<string, unknown>> => {
      if (!receiptChecker.Check(value)) {
        const first = receiptChecker.Errors(value).First();
        return {
          verdict: 'invalid',
          source,
          recordId: recordIdOf(value),
          problems: [
            `not a receipt (${first ? `${first.path || '(root)'}: ${first.message}` : 'does not match the receipt schema'})`,
          ],
        };
      }
      const receipt = value as ReceiptType;
      const facts = {
        source,
        recordId: receipt.recordId,
        status: receipt.status,
        batchId: receipt.batchId,
        blockNumber: receipt.blockNumber,
      };
      try {
        const result = await verifier.verify(receipt);
        return result.valid
          ? { verdict: 'valid', ...facts, confirmations: result.onChain.confirmations }
          : { verdict: 'invalid', ...facts, problems: result.problems };
      } catch (error) {
        // Not shown invalid, but not shown valid either.
        return { verdict: 'unverified', ...facts, problems: [chainReadProblem(error, rpcUrl)] };
      }
    };
    let valid = 0;
    for (let start = 0; start < found.length; start += CONCURRENCY) {
      const verdicts = await Promise.all(found.slice(start, start + CONCURRENCY).map(check));
      for (const verdict of verdicts) {
        io.json(verdict);
        if (verdict.verdict === 'valid') valid += 1;
      }
    }
    io.warn(`${valid} of ${found.length} receipt${found.length === 1 ? '' : 's'} valid`);
    return valid < found.length || emptyFiles > 0 ? 1 : 0;
  },
};

/** One line for a VerificationError (the chain could not be read): viem's short message and details. */
function chainReadProblem(error: unknown, rpcUrl: string): string {
  const cause = (error as { cause?: { shortMessage?: unknown; details?: unknown } }).cause;
  const why =
    typeof cause?.shortMessage === 'string'
      ? `${cause.shortMessage}${typeof cause.details === 'string' ? ` ${cause.details}` : ''}`
      : describeError(error);
  return `could not read the chain at ${rpcUrl}: ${why}`;
}

function recordIdOf(value: unknown): unknown {
  return typeof value === 'object' && value !== null
    ? (value as { recordId?: unknown }).recordId
    : undefined;
}

async function readAll(stream: Io['stdin']): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
