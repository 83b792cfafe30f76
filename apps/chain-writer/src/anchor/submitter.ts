import type { Database } from '@streamanchor/db';
import type { Logger } from '@streamanchor/service-kit';
import { AGAIN, createLoop, type Loop } from '@streamanchor/service-kit';
import type { Kysely } from 'kysely';
import type { Address } from 'viem';
import type { WriterPublicClient, WriterWalletClient } from '../chain';
import { writerLedger } from '../ledger';
import { createActor } from './act';
import { type ChainView, createChainView, type HeadRef, type Nonces } from './chain-view';
import { decide, decideFills, findNonceGaps, type OpenBatch } from './decide';
import { type AnchorEffects, createAnchorEffects } from './effects';
import type { SignerLock } from './lock';
import { createSubmitterMemory } from './memory';
import { errorText } from './revert';
import { createSigner } from './sign';
import { createAnchorStore } from './store';

export interface SubmitterDeps {
  db: Kysely<Database>;
  logger: Logger;
  publicClient: WriterPublicClient;
  walletClient: WriterWalletClient;
  /** Lowercase contract address (as stored in batches.contract). */
  contract: Address;
  chainId: number;
  /** A tx pooled this long after this process (re)signed, broadcast or first saw it is replaced with bumped fees. */
  confirmTimeoutMs: number;
  /** Poll interval (default 500 ms). */
  intervalMs?: number;
  /** Batches seen anchored are re-read at least this often, reorg noticed or not (default 30 s). */
  recheckMs?: number;
  /** When given, the submitter only works while it holds this lock (one nonce owner per key). */
  lock?: SignerLock;
  /** What the submitter does (sign, ledger writes, broadcast). Default: the real ones; tests wrap them. */
  effects?: AnchorEffects;
}

export interface Submitter extends Loop {
  /** Batch ids whose anchoring this process has seen on chain (receipt or isAnchored) → when. */
  readonly confirmed: ReadonlyMap<string, number>;
}

/** Builds at most this many batches' transactions per tick. */
const BUILT_PER_TICK = 32;
const DEFAULT_RECHECK_MS = 30_000;

/**
 * The anchor submitter: the only code that signs with the writer key, so the only owner of
 * its nonce. Each tick: load the batches not final yet (store), read where each stands at
 * one head block (chain view), `decide` what to do (pure), do it (effects: sign, ledger,
 * broadcast). Every signed tx is stored before it is broadcast, and a new signature is made
 * only after the batch was read not anchored at a block where its nonce state is known, so
 * a batch is never anchored twice and never dropped — across reorgs (an `included` batch is
 * followed until it is `final`) and restarts (the stored bytes are re-broadcast).
 */
export function createSubmitter(deps: SubmitterDeps): Submitter {
  const logger = deps.logger.child({ subsystem: 'anchor' });
  const { db, publicClient, walletClient, contract, chainId } = deps;
  const options = { confirmTimeoutMs: deps.confirmTimeoutMs };
  const recheckMs = deps.recheckMs ?? DEFAULT_RECHECK_MS;
  const signer = createSigner({ publicClient, walletClient, chainId, contract });
  const effects =
    deps.effects ??
    createAnchorEffects({ signer, ledger: writerLedger(db, { chainId, contract }), publicClient });
  const chain: ChainView = createChainView({
    publicClient,
    contract,
    account: walletClient.account,
  });
  const store = createAnchorStore(db, { chainId, contract, signer: signer.address });
  const memory = createSubmitterMemory();
  const actor = createActor({ effects, chain, memory, logger, options, nextNonce });
  let lastHead: HeadRef | undefined;

  /** Next nonce: past the node's pending count and past every nonce a batch row holds. */
  async function nextNonce(head: bigint): Promise<number> {
    const { mined, pending } = await chain.nonces(head);
    // Nonces below the mined count cannot matter here: only those rows are read.
    const held = await store.heldNonces(mined);
    let next = pending;
    for (const nonce of held) if (nonce + 1 > next) next = nonce + 1;
    return next;
  }

  /** Observe one batch at `head`, decide, act. */
  async function step(batch: OpenBatch, head: bigint, minedNonce: number): Promise<void> {
    let view = await chain.observe(batch, head, minedNonce);
    // Out before this process knew it (a restart): its confirm timeout starts now.
    if (batch.tx && view.tx?.kind === 'pooled') memory.out(batch.batchId, batch.tx.txHash);
    let action = decide(batch, view, memory.of(batch, Date.now()), options);
    if (action.kind === 'estimate') {
      view = { ...view, gas: await chain.estimateAnchorGas(batch) };
      action = decide(batch, view, memory.of(batch, Date.now()), options);
    }
    await actor.act(batch, view, action);
  }

  async function guarded(batchId: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      const attempt = memory.noteFailure(batchId);
      logger.error(
        { err: error, batchId, reason: errorText(error), attempt },
        'anchoring step failed; will retry',
      );
    }
  }

  /** Fills the nonces no batch holds that later anchor txs wait behind (see findNonceGaps). */
  async function fillGaps(inFlight: OpenBatch[], nonces: Nonces): Promise<void> {
    for (const nonce of memory.fillers.keys()) {
      if (nonce < nonces.mined) memory.fillers.delete(nonce);
    }
    const waiting = inFlight.flatMap((b) =>
      b.tx && b.tx.nonce >= nonces.mined ? [b.tx.nonce] : [],
    );
    if (waiting.length === 0) return;
    const gaps = findNonceGaps({
      minedNonce: nonces.mined,
      pendingNonce: nonces.pending,
      held: await store.heldNonces(nonces.mined),
      waiting,
    });
    for (const { nonce, attempt } of decideFills(gaps, memory.fillers, Date.now(), options)) {
      await actor
        .fill(nonce, attempt, 'no batch holds this nonce and later anchor txs wait behind it')
        .catch((error: unknown) =>
          logger.error(
            { err: error, nonce, reason: errorText(error) },
            'filling a nonce gap failed; will retry',
          ),
        );
    }
  }

  /** Reads the head; forgets confirmations when the last head is no longer canonical (a reorg) or they are old. */
  async function checkHead(): Promise<HeadRef> {
    const head = await chain.head();
    if (lastHead && !(await chain.isCanonical(lastHead))) {
      logger.warn(
        {
          was: { number: Number(lastHead.number), hash: lastHead.hash },
          head: Number(head.number),
        },
        'the chain reorganized; re-checking every batch not final yet',
      );
      memory.confirmed.clear();
    }
    lastHead = head;
    const recheckBefore = Date.now() - recheckMs;
    for (const [id, at] of memory.confirmed) if (at < recheckBefore) memory.confirmed.delete(id);
    return head;
  }

  async function tick() {
    if (deps.lock && !(await deps.lock.ensure())) return;
    const [inFlight, built] = await Promise.all([store.inFlight(), store.built(BUILT_PER_TICK)]);
    memory.prune(new Set([...inFlight, ...built].map((b) => b.batchId as string)));
    if (inFlight.length === 0 && built.length === 0) return;

    const head = await checkHead();
    const nonces = await chain.nonces(head.number);
    // New batches first: their records wait for a first tx, while an in-flight batch's
    // tx is already out (following it up can wait the few calls signing takes). Each
    // step reads the chain itself and the next nonce is read fresh for every signature,
    // so the order changes no decision.
    for (const batch of built) {
      await guarded(batch.batchId, () => step(batch, head.number, nonces.mined));
    }
    for (const batch of inFlight) {
      if (memory.confirmed.has(batch.batchId)) continue;
      await guarded(batch.batchId, () => step(batch, head.number, nonces.mined));
    }
    await fillGaps(inFlight, nonces);
    return built.length === BUILT_PER_TICK ? AGAIN : undefined;
  }

  const loop = createLoop('anchor', logger, deps.intervalMs ?? 500, tick);
  return Object.assign(loop, { confirmed: memory.confirmed as ReadonlyMap<string, number> });
}
