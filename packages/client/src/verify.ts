import {
  batchAnchoredEvent,
  leafHash,
  type Receipt,
  verifyReceiptProof,
} from '@streamanchor/protocol';
import { type Client, createPublicClient, type Hex, http } from 'viem';
import { getBlock, getBlockNumber, getChainId, getLogs } from 'viem/actions';
import { VerificationError } from './errors';

export interface VerifyReceiptOptions {
  /** A JSON-RPC URL (HTTP) of the chain; or pass `publicClient`. */
  rpcUrl?: string;
  /** A viem client to read the chain with (any client with a transport). */
  publicClient?: Client;
  /** The StreamAnchor contract the receipt must name (case-insensitive). */
  expectedContract?: string;
  /** The chain id the receipt must name (the RPC's chain id is always checked too). */
  expectedChainId?: number;
  /** The content hash you computed (e.g. from the ack); the receipt must commit to it. */
  expectedContentHash?: string;
  /**
   * Confirmations (the anchoring block counted) you require for finality, e.g. the
   * indexer's FINALITY_DEPTH (12 by default). When given, `onChain.final` says whether the
   * chain has the block that deep, and a `final` receipt the chain does not back is invalid.
   */
  finalityDepth?: number;
}

export interface OnChainCheck {
  /** A BatchAnchored event for the receipt's batchId was found at the receipt's block. */
  found: boolean;
  rootMatches: boolean;
  /** recordCount emitted on chain (null when not found). */
  recordCount: number | null;
  recordCountMatches: boolean;
  /** The event is in the receipt's block (same hash and number). */
  blockMatches: boolean;
  txMatches: boolean;
  /** The RPC's chain id equals the receipt's chainId. */
  chainIdMatches: boolean;
  /**
   * The chain's block at `receipt.blockNumber` has hash `receipt.blockHash`: the anchoring
   * block is on the canonical chain (false after a reorg dropped it).
   */
  canonical: boolean;
  /** Hash of the chain's block at `receipt.blockNumber` (null when the chain is not that high). */
  canonicalBlockHash: string | null;
  /** The chain's head block number when checked. */
  headBlockNumber: number;
  /** `head − blockNumber + 1` when the block is canonical, else 0 (as receipts count them). */
  confirmations: number;
  /** Canonical and at least `finalityDepth` confirmations deep (null without `finalityDepth`). */
  final: boolean | null;
  /**
   * For a receipt with status `final`: whether the chain agrees (`final` above). Null for
   * other statuses or without `finalityDepth`.
   */
  finalClaimHolds: boolean | null;
}

export interface ReceiptVerification {
  /** Every check below passed. */
  valid: boolean;
  /** The leaf hash matches the fields and the proof leads to merkleRoot (verifyReceiptProof). */
  proofValid: boolean;
  /** leafHash(receipt fields) equals receipt.leafHash. */
  leafMatches: boolean;
  /** receipt.contentHash equals expectedContentHash (null when none was given). */
  contentMatches: boolean | null;
  /** receipt.contract / chainId equal the expected ones (true when none were given). */
  contractMatches: boolean;
  chainIdMatches: boolean;
  /** The receipt's status is `reorged`: it names a block that left the chain, never valid. */
  reorged: boolean;
  onChain: OnChainCheck;
  /** Human-readable reasons for every failed check (empty when valid). */
  problems: string[];
}

interface AnchorLog {
  merkleRoot: string;
  recordCount: number;
  transactionHash: string;
  blockHash: string;
  blockNumber: number;
  address: string;
}

/**
 * Reads BatchAnchored events for one client, caching each (contract, batch, block)
 * lookup so verifying every receipt of a batch costs one RPC call.
 */
class AnchorReader {
  readonly #client: Client;
  #chainId: Promise<number> | undefined;
  readonly #anchors = new Map<string, Promise<AnchorLog | null>>();
  static readonly maxEntries = 1000;

  constructor(client: Client) {
    this.#client = client;
  }

  /** The chain's head; concurrent calls share one request (never cached beyond that). */
  head(): Promise<number> {
    return this.#shared('head', async () =>
      Number(await getBlockNumber(this.#client, { cacheTime: 0 })),
    );
  }

  /** The canonical block hash at `blockNumber` (null when the chain is not that high yet); shared like `head`. */
  blockHashAt(blockNumber: number): Promise<string | null> {
    return this.#shared(`block:${blockNumber}`, async () => {
      try {
        const block = await getBlock(this.#client, { blockNumber: BigInt(blockNumber) });
        return block.hash;
      } catch (error) {
        // Asked beyond the head: no such block (yet). Anything else is a read failure.
        if ((error as Error).name === 'BlockNotFoundError') return null;
        throw error;
      }
    });
  }

  readonly #inFlight = new Map<string, Promise<unknown>>();

  #shared<T>(key: string, read: () => Promise<T>): Promise<T> {
    let request = this.#inFlight.get(key) as Promise<T> | undefined;
    if (!request) {
      request = read().finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, request);
    }
    return request;
  }

  chainId(): Promise<number> {
    this.#chainId ??= getChainId(this.#client).catch((error: unknown) => {
      this.#chainId = undefined;
      throw error;
    });
    return this.#chainId;
  }

  anchor(
    contract: Hex,
    batchId: Hex,
    blockHash: Hex,
    blockNumber: number,
  ): Promise<AnchorLog | null> {
    const key = `${contract.toLowerCase()}:${batchId}:${blockHash}:${blockNumber}`;
    let lookup = this.#anchors.get(key);
    if (!lookup) {
      lookup = this.#find(contract, batchId, blockHash, blockNumber).then(
        (found) => {
          // "Not found" may just mean the node lags behind: ask again next time.
          if (!found) this.#anchors.delete(key);
          return found;
        },
        (error: unknown) => {
          this.#anchors.delete(key);
          throw error;
        },
      );
      if (this.#anchors.size >= AnchorReader.maxEntries) {
        this.#anchors.delete(this.#anchors.keys().next().value!);
      }
      this.#anchors.set(key, lookup);
    }
    return lookup;
  }

  async #find(
    contract: Hex,
    batchId: Hex,
    blockHash: Hex,
    blockNumber: number,
  ): Promise<AnchorLog | null> {
    let anchors: AnchorLog[] = [];
    try {
      anchors = await this.#query(contract, batchId, { blockHash });
    } catch {
      // Unknown block hash (reorged away, or a node that cannot query by hash): try the number.
    }
    if (anchors.length === 0) {
      const block = BigInt(blockNumber);
      anchors = await this.#query(contract, batchId, { fromBlock: block, toBlock: block });
    }
    return anchors[0] ?? null;
  }

  async #query(
    contract: Hex,
    batchId: Hex,
    range: { blockHash: Hex } | { fromBlock: bigint; toBlock: bigint },
  ): Promise<AnchorLog[]> {
    const logs = await getLogs(this.#client, {
      address: contract,
      event: batchAnchoredEvent,
      args: { batchId },
      strict: true,
      ...range,
    });
    return logs
      .filter((log) => !log.removed && log.blockHash !== null && log.transactionHash !== null)
      .map((log) => ({
        merkleRoot: log.args.merkleRoot,
        recordCount: log.args.recordCount,
        transactionHash: log.transactionHash!,
        blockHash: log.blockHash!,
        blockNumber: Number(log.blockNumber),
        address: log.address,
      }));
  }
}

const readersByClient = new WeakMap<Client, AnchorReader>();
const clientsByUrl = new Map<string, Client>();

function readerFor(options: VerifyReceiptOptions): AnchorReader {
  let client = options.publicClient;
  if (!client) {
    if (!options.rpcUrl) throw new VerificationError('verifyReceipt needs rpcUrl or publicClient');
    client = clientsByUrl.get(options.rpcUrl);
    if (!client) {
      client = createPublicClient({ transport: http(options.rpcUrl, { retryCount: 2 }) });
      clientsByUrl.set(options.rpcUrl, client);
    }
  }
  let reader = readersByClient.get(client);
  if (!reader) {
    reader = new AnchorReader(client);
    readersByClient.set(client, reader);
  }
  return reader;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Verifies a receipt without trusting StreamAnchor's servers: recomputes the leaf hash,
 * checks the Merkle proof against the receipt's root, and reads the chain to confirm that
 * the contract emitted BatchAnchored(batchId, merkleRoot, recordCount) in the receipt's
 * block and transaction, and that this block is still canonical (`eth_getBlockByNumber`
 * at `blockNumber` has `blockHash`). Reports the chain's confirmations and, with
 * `finalityDepth`, whether the block is final. A `reorged` receipt is never valid.
 * Event lookups are cached per (contract, batch, block); the head and the canonical hash
 * are read afresh on every call (concurrent calls share the requests).
 *
 * Resolves with every check's outcome (`valid` when all pass); rejects with
 * VerificationError only when the chain cannot be read.
 */
export async function verifyReceipt(
  receipt: Receipt,
  options: VerifyReceiptOptions,
): Promise<ReceiptVerification> {
  const reader = readerFor(options);
  const problems: string[] = [];

  const leafMatches = leafHash(receipt) === receipt.leafHash;
  if (!leafMatches) problems.push('leaf hash does not match the receipt fields');
  const proofValid = verifyReceiptProof(receipt);
  if (!proofValid) problems.push('Merkle proof does not lead to merkleRoot');
  const contentMatches =
    options.expectedContentHash === undefined
      ? null
      : same(receipt.contentHash, options.expectedContentHash);
  if (contentMatches === false) problems.push('content hash differs from the expected one');
  const contractMatches =
    options.expectedContract === undefined || same(receipt.contract, options.expectedContract);
  if (!contractMatches)
    problems.push(`contract ${receipt.contract} is not ${options.expectedContract}`);
  const chainIdMatches =
    options.expectedChainId === undefined || receipt.chainId === options.expectedChainId;
  if (!chainIdMatches) problems.push(`chain ${receipt.chainId} is not ${options.expectedChainId}`);

  const reorged = receipt.status === 'reorged';
  if (reorged) {
    problems.push(
      `the receipt is a reorged notice (revision ${receipt.revision}): block ${receipt.blockNumber} (${receipt.blockHash}) left the canonical chain; a receipt with a higher revision follows`,
    );
  }

  let anchor: AnchorLog | null;
  let rpcChainId: number;
  let head: number;
  let canonicalBlockHash: string | null;
  try {
    [rpcChainId, anchor, head, canonicalBlockHash] = await Promise.all([
      reader.chainId(),
      reader.anchor(receipt.contract, receipt.batchId, receipt.blockHash, receipt.blockNumber),
      reader.head(),
      reader.blockHashAt(receipt.blockNumber),
    ]);
  } catch (error) {
    throw new VerificationError('Could not read the chain to verify the receipt', {
      details: (error as Error).message,
      cause: error,
    });
  }

  const onChain: OnChainCheck = {
    found: anchor !== null,
    rootMatches: anchor !== null && same(anchor.merkleRoot, receipt.merkleRoot),
    recordCount: anchor?.recordCount ?? null,
    recordCountMatches: anchor !== null && anchor.recordCount === receipt.recordCount,
    blockMatches:
      anchor !== null &&
      same(anchor.blockHash, receipt.blockHash) &&
      anchor.blockNumber === receipt.blockNumber,
    txMatches: anchor !== null && same(anchor.transactionHash, receipt.txHash),
    chainIdMatches: rpcChainId === receipt.chainId,
    canonical: false,
    canonicalBlockHash,
    headBlockNumber: head,
    confirmations: 0,
    final: null,
    finalClaimHolds: null,
  };
  onChain.canonical = canonicalBlockHash !== null && same(canonicalBlockHash, receipt.blockHash);
  if (onChain.canonical) onChain.confirmations = Math.max(0, head - receipt.blockNumber + 1);
  const { finalityDepth } = options;
  if (finalityDepth !== undefined) {
    onChain.final = onChain.canonical && onChain.confirmations >= finalityDepth;
    if (receipt.status === 'final') onChain.finalClaimHolds = onChain.final;
  }
  if (!onChain.chainIdMatches)
    problems.push(`the RPC serves chain ${rpcChainId}, the receipt names ${receipt.chainId}`);
  if (!onChain.found)
    problems.push(
      `no BatchAnchored event for batch ${receipt.batchId} at block ${receipt.blockNumber}`,
    );
  else {
    if (!onChain.rootMatches)
      problems.push(`on-chain root ${anchor!.merkleRoot} differs from the receipt's`);
    if (!onChain.recordCountMatches)
      problems.push(`on-chain recordCount ${anchor!.recordCount} differs from the receipt's`);
    if (!onChain.blockMatches)
      problems.push('the anchor is in another block than the receipt says');
    if (!onChain.txMatches)
      problems.push('the anchor is in another transaction than the receipt says');
  }
  if (!onChain.canonical) {
    problems.push(
      canonicalBlockHash === null
        ? `block ${receipt.blockNumber} is not on the chain yet (head ${head})`
        : `block ${receipt.blockNumber} is not canonical: the chain has ${canonicalBlockHash} there, not the receipt's ${receipt.blockHash} (a reorg dropped it)`,
    );
  }
  if (onChain.finalClaimHolds === false) {
    problems.push(
      onChain.canonical
        ? `the receipt claims final, but the chain has ${onChain.confirmations} confirmations, fewer than finalityDepth ${finalityDepth}`
        : 'the receipt claims final, but its block is not canonical',
    );
  }
  return {
    valid: problems.length === 0,
    proofValid,
    leafMatches,
    contentMatches,
    contractMatches,
    chainIdMatches,
    reorged,
    onChain,
    problems,
  };
}

/** verifyReceipt with fixed options (one client, one cache); handy for verifying a stream. */
export function createReceiptVerifier(options: VerifyReceiptOptions): {
  verify(
    receipt: Receipt,
    extra?: { expectedContentHash?: string; finalityDepth?: number },
  ): Promise<ReceiptVerification>;
} {
  readerFor(options); // fail fast on missing rpcUrl/publicClient
  return { verify: (receipt, extra) => verifyReceipt(receipt, { ...options, ...extra }) };
}
