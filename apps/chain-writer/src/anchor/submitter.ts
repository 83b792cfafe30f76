import { streamAnchorAbi } from '@streamanchor/contracts';
import type { BatchRow, Database } from '@streamanchor/db';
import type { Logger } from '@streamanchor/service-kit';
import { type Kysely, sql } from 'kysely';
import {
  type Address,
  BaseError,
  ContractFunctionRevertedError,
  encodeFunctionData,
  type Hex,
  keccak256,
  parseTransaction,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
  type TransactionSerializableEIP1559,
} from 'viem';
import type { WriterPublicClient, WriterWalletClient } from '../chain';
import { WriterError } from '../errors';
import { AGAIN, createLoop, HALT, type Loop } from '../loop';
import type { SignerLock } from './lock';

/** A signed anchor transaction, as persisted before it is broadcast. */
export interface SignedAnchor {
  batchId: string;
  txHash: Hex;
  nonce: number;
  rawTx: Hex;
  /** The tx hash this one replaces (same nonce, higher fees) or supersedes (new nonce). */
  replaces?: string | null;
}

/**
 * Test seams. A hook that throws halts the submitter on the spot, exactly as if the process
 * had died there; the app must then be stopped and a new one started (a "restart").
 */
export interface SubmitterHooks {
  /** After the signed tx was stored in the DB (status 'sent'), before it is broadcast. */
  afterPersist?: (anchor: SignedAnchor) => void | Promise<void>;
  /** After the node accepted (or already knew) the broadcast tx. */
  afterBroadcast?: (anchor: SignedAnchor) => void | Promise<void>;
}

export interface SubmitterDeps {
  db: Kysely<Database>;
  logger: Logger;
  publicClient: WriterPublicClient;
  walletClient: WriterWalletClient;
  /** Lowercase contract address (as stored in batches.contract). */
  contract: Address;
  chainId: number;
  /** A tx not mined this long after this process (re)signed it is replaced with bumped fees. */
  confirmTimeoutMs: number;
  /** Poll interval (default 500 ms). */
  intervalMs?: number;
  /** When given, the submitter only works while it holds this lock (one nonce owner per key). */
  lock?: SignerLock;
  hooks?: SubmitterHooks;
}

/** Thrown out of a hook to stop the submitter where it stands (simulated crash). */
class Halt extends Error {
  override name = 'Halt';
}

/** A node answer to eth_sendRawTransaction that means "this nonce/tx is taken care of". */
const BENIGN_BROADCAST =
  /already known|known transaction|already imported|already exists|nonce too low|nonce has already been used|replacement transaction underpriced|AlreadyKnown/i;

/** Builds at most this many batches' transactions per tick. */
const BUILT_PER_TICK = 32;
/** First retry delay after an anchor tx failed for a reason other than the batch being anchored. */
const FAILURE_BACKOFF_MS = 5_000;
const FAILURE_BACKOFF_MAX_MS = 5 * 60_000;
/** A batch seen anchored but not yet marked 'anchored' by the indexer is re-checked this often. */
const CONFIRMED_RECHECK_MS = 30_000;
/** Gas limit = estimate × 13/10 + this. */
const GAS_MARGIN = 10_000n;

export function revertErrorName(error: unknown): string | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
  if (reverted instanceof ContractFunctionRevertedError) {
    return reverted.data?.errorName ?? reverted.reason ?? 'unknown revert';
  }
  return undefined;
}

function errorText(error: unknown): string {
  if (error instanceof BaseError) return `${error.shortMessage} ${error.details ?? ''}`;
  return error instanceof Error ? error.message : String(error);
}

export interface Submitter extends Loop {
  /** Batch ids whose anchoring this process has seen on chain (receipt or isAnchored). */
  readonly confirmed: ReadonlyMap<string, number>;
}

/**
 * The anchor submitter: the only code that signs with the writer key, so the only owner of
 * its nonce. Every signed tx is stored (signer, nonce, raw_tx, tx_hash, status 'sent') before
 * it is broadcast; a restart re-broadcasts the stored bytes. A new signature for a batch is
 * only made after `isAnchored(batchId)` was read false at a block where the nonce state is
 * known, so a batch is never anchored twice and never dropped.
 */
export function createSubmitter(deps: SubmitterDeps): Submitter {
  const logger = deps.logger.child({ subsystem: 'anchor' });
  const { db, publicClient, walletClient, contract, chainId } = deps;
  const account = walletClient.account;
  const localSign = account.type === 'local' ? account.signTransaction?.bind(account) : undefined;
  if (!localSign) {
    throw new WriterError(
      'the writer signs locally: walletClient.account must be a local (private key) account',
      {
        accountType: account.type,
      },
    );
  }
  const signTransaction = localSign;

  const signer = account.address.toLowerCase() as Address;
  /**
   * Batches seen anchored on chain → when. Re-checked after CONFIRMED_RECHECK_MS while the
   * indexer has not marked them 'anchored' yet, so a reorg that drops our tx is noticed.
   */
  const confirmed = new Map<string, number>();
  /** Current tx of a batch as this process last signed or broadcast it. */
  const tracked = new Map<string, { txHash: string; since: number }>();
  const failures = new Map<string, { count: number; retryAt: number }>();
  const warnedPendingAnchored = new Set<string>();

  async function runHook(
    hook: ((anchor: SignedAnchor) => void | Promise<void>) | undefined,
    anchor: SignedAnchor,
  ) {
    if (!hook) return;
    try {
      await hook(anchor);
    } catch (error) {
      throw new Halt(`hook halted the submitter: ${(error as Error).message}`);
    }
  }

  async function isAnchored(batchId: string, blockNumber?: bigint): Promise<boolean> {
    return publicClient.readContract({
      address: contract,
      abi: streamAnchorAbi,
      functionName: 'isAnchored',
      args: [batchId as Hex],
      ...(blockNumber === undefined ? {} : { blockNumber }),
    });
  }

  /** Next nonce: past the node's pending count and past every nonce we signed and still track as 'sent'. */
  async function nextNonce(): Promise<number> {
    const [pending, row] = await Promise.all([
      publicClient.getTransactionCount({ address: account.address, blockTag: 'pending' }),
      db
        .selectFrom('batches')
        .select(sql<string | number | null>`max(nonce)`.as('max_nonce'))
        .where('signer', '=', signer)
        .where('chain_id', '=', chainId)
        .where('status', '=', 'sent')
        .executeTakeFirst(),
    ]);
    const dbNext = row?.max_nonce == null ? 0 : Number(row.max_nonce) + 1;
    return Math.max(pending, dbNext);
  }

  async function broadcast(anchor: SignedAnchor): Promise<'accepted' | 'known' | 'rejected'> {
    let outcome: 'accepted' | 'known' | 'rejected';
    try {
      await publicClient.sendRawTransaction({ serializedTransaction: anchor.rawTx });
      outcome = 'accepted';
    } catch (error) {
      const text = errorText(error);
      if (BENIGN_BROADCAST.test(text)) {
        logger.debug(
          { batchId: anchor.batchId, txHash: anchor.txHash, reason: text },
          'node already has this nonce/tx',
        );
        outcome = 'known';
      } else {
        logger.warn(
          { batchId: anchor.batchId, txHash: anchor.txHash, nonce: anchor.nonce, reason: text },
          'broadcast rejected',
        );
        return 'rejected';
      }
    }
    tracked.set(anchor.batchId, {
      txHash: anchor.txHash,
      since: tracked.get(anchor.batchId)?.since ?? Date.now(),
    });
    await runHook(deps.hooks?.afterBroadcast, anchor);
    return outcome;
  }

  /**
   * Signs anchorBatch for `batch` with `nonce`, stores it (compare-and-set on the batch's
   * current state) and broadcasts it. `previous` is the tx it replaces (same nonce: fees are
   * bumped so the node takes the replacement).
   */
  async function signPersistBroadcast(
    batch: BatchRow,
    nonce: number,
    previous?: { txHash: string; rawTx: string },
  ): Promise<'sent' | 'anchored' | 'skipped'> {
    const args = [batch.batch_id as Hex, batch.merkle_root as Hex, batch.record_count] as const;
    let gas: bigint;
    try {
      gas = await publicClient.estimateContractGas({
        address: contract,
        abi: streamAnchorAbi,
        functionName: 'anchorBatch',
        args,
        account,
        // Not 'pending' (some nodes' default): a replacement must be estimated without the tx it replaces.
        blockTag: 'latest',
      });
    } catch (error) {
      if (revertErrorName(error) === 'BatchAlreadyAnchored') {
        logger.info(
          { batchId: batch.batch_id },
          'gas estimate says the batch is already anchored; not signing',
        );
        return 'anchored';
      }
      throw error;
    }
    const fees = await publicClient.estimateFeesPerGas({ type: 'eip1559' });
    const tx: TransactionSerializableEIP1559 = {
      type: 'eip1559',
      chainId,
      nonce,
      to: contract,
      data: encodeFunctionData({ abi: streamAnchorAbi, functionName: 'anchorBatch', args }),
      value: 0n,
      gas: (gas * 13n) / 10n + GAS_MARGIN,
      maxFeePerGas: fees.maxFeePerGas,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    };
    if (previous) {
      const old = parseTransaction(previous.rawTx as Hex);
      if (
        old.nonce === nonce &&
        old.maxFeePerGas !== undefined &&
        old.maxPriorityFeePerGas !== undefined
      ) {
        // A replacement must raise both fee fields by at least 10% or the node refuses it.
        const bump = (value: bigint) => (value * 1125n) / 1000n + 1n;
        tx.maxPriorityFeePerGas = bigMax(fees.maxPriorityFeePerGas, bump(old.maxPriorityFeePerGas));
        tx.maxFeePerGas = bigMax(
          fees.maxFeePerGas,
          bump(old.maxFeePerGas),
          tx.maxPriorityFeePerGas,
        );
      }
    }
    const rawTx = await signTransaction(tx);
    const anchor: SignedAnchor = {
      batchId: batch.batch_id,
      txHash: keccak256(rawTx),
      nonce,
      rawTx,
      replaces: previous?.txHash ?? null,
    };

    // Persist BEFORE broadcasting: a crash after this line leaves a stored tx that the next
    // start re-broadcasts (same bytes, same nonce), never a tx the database does not know.
    let update = db
      .updateTable('batches')
      .set({
        status: 'sent',
        signer,
        nonce,
        raw_tx: rawTx,
        tx_hash: anchor.txHash,
        sent_at: new Date(),
      })
      .where('batch_id', '=', batch.batch_id);
    update = previous
      ? update.where('status', '=', 'sent').where('raw_tx', '=', previous.rawTx)
      : update.where('status', '=', 'built');
    const result = await update.executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) {
      logger.warn(
        { batchId: batch.batch_id },
        'batch changed while signing; the new tx was discarded unsent',
      );
      return 'skipped';
    }
    tracked.set(batch.batch_id, { txHash: anchor.txHash, since: Date.now() });
    logger.info(
      {
        batchId: batch.batch_id,
        txHash: anchor.txHash,
        nonce,
        replaces: anchor.replaces ?? undefined,
      },
      previous ? 'anchor tx re-signed and stored' : 'anchor tx signed and stored',
    );
    await runHook(deps.hooks?.afterPersist, anchor);
    await broadcast(anchor);
    return 'sent';
  }

  function backedOff(batchId: string): boolean {
    const failure = failures.get(batchId);
    return failure !== undefined && Date.now() < failure.retryAt;
  }

  function noteFailure(batchId: string): void {
    const count = (failures.get(batchId)?.count ?? 0) + 1;
    const delay = Math.min(FAILURE_BACKOFF_MS * 2 ** (count - 1), FAILURE_BACKOFF_MAX_MS);
    failures.set(batchId, { count, retryAt: Date.now() + delay });
  }

  async function markSentWithoutTx(batch: BatchRow, why: string): Promise<void> {
    await db
      .updateTable('batches')
      .set({ status: 'sent', sent_at: new Date() })
      .where('batch_id', '=', batch.batch_id)
      .where('status', '=', 'built')
      .execute();
    confirmed.set(batch.batch_id, Date.now());
    logger.warn(
      { batchId: batch.batch_id },
      `batch is already anchored on chain (${why}); marked sent without sending`,
    );
  }

  async function handleBuilt(batch: BatchRow): Promise<void> {
    if (backedOff(batch.batch_id)) return;
    // A crash may have happened after a broadcast this database never heard of.
    if (await isAnchored(batch.batch_id)) return markSentWithoutTx(batch, 'found before signing');
    const outcome = await signPersistBroadcast(batch, await nextNonce());
    if (outcome === 'anchored')
      await markSentWithoutTx(batch, 'gas estimate reverted with BatchAlreadyAnchored');
  }

  async function replayRevertReason(batch: BatchRow, blockNumber: bigint): Promise<string> {
    try {
      await publicClient.simulateContract({
        address: contract,
        abi: streamAnchorAbi,
        functionName: 'anchorBatch',
        args: [batch.batch_id as Hex, batch.merkle_root as Hex, batch.record_count],
        account,
        blockNumber,
      });
      return 'unknown (the call succeeds when replayed; out of gas?)';
    } catch (error) {
      return revertErrorName(error) ?? errorText(error);
    }
  }

  async function handleSent(
    batch: BatchRow,
    head: bigint,
    chainNonce: () => Promise<number>,
  ): Promise<void> {
    const batchId = batch.batch_id;
    if (!batch.raw_tx || batch.nonce == null) {
      // Marked 'sent' because it was found anchored before we signed anything: nothing of ours
      // to re-broadcast. If the chain no longer has it (a reorg), sign it anew from 'built'.
      if (await isAnchored(batchId, head)) {
        confirmed.set(batchId, Date.now());
        return;
      }
      await db
        .updateTable('batches')
        .set({ status: 'built' })
        .where('batch_id', '=', batchId)
        .where('status', '=', 'sent')
        .where('raw_tx', 'is', null)
        .execute();
      logger.warn({ batchId }, 'batch no longer anchored and no stored tx of ours; back to built');
      return;
    }
    // Follow the stored bytes: after a reorg the indexer may leave the hash of the tx that
    // had mined (an earlier signature of the same nonce) in tx_hash.
    const txHash = keccak256(batch.raw_tx as Hex);
    const nonce = Number(batch.nonce);
    const current = { txHash, rawTx: batch.raw_tx };

    const receipt = await publicClient
      .getTransactionReceipt({ hash: txHash })
      .catch((error: unknown) => {
        if (error instanceof TransactionReceiptNotFoundError) return undefined;
        throw error;
      });
    if (receipt) {
      if (receipt.status === 'success') {
        confirmed.set(batchId, Date.now());
        failures.delete(batchId);
        logger.info(
          { batchId, txHash, blockNumber: Number(receipt.blockNumber) },
          'anchor tx mined',
        );
        return;
      }
      const reason = await replayRevertReason(batch, receipt.blockNumber);
      if (await isAnchored(batchId, receipt.blockNumber)) {
        confirmed.set(batchId, Date.now());
        logger.warn(
          { batchId, txHash, reason },
          'anchor tx reverted because the batch was already anchored; nothing to do',
        );
        return;
      }
      if (backedOff(batchId)) return;
      noteFailure(batchId);
      logger.error(
        { batchId, txHash, reason, attempt: failures.get(batchId)?.count },
        'anchor tx reverted; re-signing with a new nonce',
      );
      await signPersistBroadcast(batch, await nextNonce(), current);
      return;
    }

    // No receipt. Read the anchor flag and the signer's mined nonce at ONE block, so that
    // "nonce used but batch not anchored" really means our tx can no longer anchor it.
    const [anchored, mined] = await Promise.all([isAnchored(batchId, head), chainNonce()]);
    if (mined > nonce) {
      if (anchored) {
        confirmed.set(batchId, Date.now());
        logger.info({ batchId, txHash }, 'batch anchored by an earlier signature of its tx');
        return;
      }
      if (backedOff(batchId)) return;
      noteFailure(batchId);
      logger.warn(
        { batchId, txHash, nonce },
        'nonce used by another tx and batch not anchored; re-signing with a new nonce',
      );
      await signPersistBroadcast(batch, await nextNonce(), current);
      return;
    }

    // Our nonce is still free: keep our tx in the node's pool (a restart or a dropped tx
    // re-broadcasts the very same bytes), and replace it with higher fees when it lingers.
    if (anchored && !warnedPendingAnchored.has(batchId)) {
      warnedPendingAnchored.add(batchId);
      logger.warn(
        { batchId, txHash, nonce },
        'batch anchored elsewhere while our tx is pending; it will revert harmlessly',
      );
    }
    const seen = tracked.get(batchId);
    if (!seen || seen.txHash !== txHash) {
      logger.info({ batchId, txHash, nonce }, 're-broadcasting stored anchor tx');
      tracked.delete(batchId);
      const outcome = await broadcast({ batchId, txHash, nonce, rawTx: batch.raw_tx as Hex });
      if (outcome === 'rejected' && !anchored) await signPersistBroadcast(batch, nonce, current);
      return;
    }
    const inPool = await publicClient.getTransaction({ hash: txHash }).then(
      () => true,
      (error: unknown) => {
        if (error instanceof TransactionNotFoundError) return false;
        throw error;
      },
    );
    if (!inPool) {
      logger.warn(
        { batchId, txHash, nonce },
        'anchor tx dropped from the pool; re-broadcasting the stored tx',
      );
      const outcome = await broadcast({ batchId, txHash, nonce, rawTx: batch.raw_tx as Hex });
      if (outcome === 'rejected' && !anchored) await signPersistBroadcast(batch, nonce, current);
      return;
    }
    if (!anchored && Date.now() - seen.since > deps.confirmTimeoutMs) {
      logger.warn(
        { batchId, txHash, nonce, waitedMs: Date.now() - seen.since },
        'anchor tx not mined in time; bumping fees',
      );
      await signPersistBroadcast(batch, nonce, current);
    }
  }

  async function guarded(batchId: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      if (error instanceof Halt) throw error;
      noteFailure(batchId);
      logger.error(
        {
          err: error,
          batchId,
          reason: errorText(error),
          retryInMs: (failures.get(batchId)?.retryAt ?? 0) - Date.now(),
        },
        'anchoring step failed; will retry',
      );
    }
  }

  async function tick() {
    if (deps.lock && !(await deps.lock.ensure())) return;
    const mine = db
      .selectFrom('batches')
      .selectAll()
      .where('chain_id', '=', chainId)
      .where('contract', '=', contract)
      .orderBy('seq');
    const sent = await mine
      .where('status', '=', 'sent')
      .where((eb) => eb.or([eb('signer', '=', signer), eb('signer', 'is', null)]))
      .execute();
    const sentIds = new Set(sent.map((b) => b.batch_id));
    const recheckBefore = Date.now() - CONFIRMED_RECHECK_MS;
    for (const [id, at] of confirmed)
      if (!sentIds.has(id) || at < recheckBefore) confirmed.delete(id);
    for (const id of tracked.keys()) if (!sentIds.has(id)) tracked.delete(id);
    const open = sent.filter((b) => !confirmed.has(b.batch_id));
    const built = await mine.where('status', '=', 'built').limit(BUILT_PER_TICK).execute();
    if (open.length === 0 && built.length === 0) return;

    if (open.length > 0) {
      const head = await publicClient.getBlockNumber({ cacheTime: 0 });
      let minedNonce: Promise<number> | undefined;
      const chainNonce = () => {
        minedNonce ??= publicClient.getTransactionCount({
          address: account.address,
          blockNumber: head,
        });
        return minedNonce;
      };
      for (const batch of open)
        await guarded(batch.batch_id, () => handleSent(batch, head, chainNonce));
    }
    for (const batch of built) await guarded(batch.batch_id, () => handleBuilt(batch));
    return built.length === BUILT_PER_TICK ? AGAIN : undefined;
  }

  const loop = createLoop('anchor', logger, deps.intervalMs ?? 500, async () => {
    try {
      return await tick();
    } catch (error) {
      if (error instanceof Halt) {
        logger.warn({ reason: error.message }, 'submitter halted by a hook (simulated crash)');
        return HALT;
      }
      throw error;
    }
  });
  return Object.assign(loop, { confirmed: confirmed as ReadonlyMap<string, number> });
}

function bigMax(...values: bigint[]): bigint {
  let max = values[0] ?? 0n;
  for (const value of values) if (value > max) max = value;
  return max;
}
