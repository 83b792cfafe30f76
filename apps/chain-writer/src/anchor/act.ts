import type { Logger } from '@streamanchor/service-kit';
import type { Hex } from 'viem';
import type { ChainView } from './chain-view';
import {
  type Action,
  type BatchView,
  type DecideOptions,
  decideFills,
  type OpenBatch,
  type StoredTx,
} from './decide';
import type { AnchorEffects } from './effects';
import type { SubmitterMemory } from './memory';

export type Actor = {
  /** Carries out what `decide` chose for `batch` (an `estimate` is the caller's to answer). */
  act(batch: OpenBatch, view: BatchView, action: Action): Promise<void>;
  /** Uses up `nonce` with a 0-value self-transfer so later txs stop waiting behind it. */
  fill(nonce: number, attempt: number, why: string): Promise<void>;
};

export function createActor({
  effects,
  chain,
  memory,
  logger,
  options,
  nextNonce,
}: {
  effects: AnchorEffects;
  chain: ChainView;
  memory: SubmitterMemory;
  logger: Logger;
  options: DecideOptions;
  /** Past the node's pending count and every nonce a batch row holds. */
  nextNonce: (head: bigint) => Promise<number>;
}): Actor {
  async function send(batchId: Hex, tx: StoredTx): Promise<void> {
    const outcome = await effects.broadcast({ ...tx, batchId });
    if (outcome.kind === 'rejected') {
      memory.refused(batchId, tx.txHash);
      logger.warn(
        { batchId, txHash: tx.txHash, nonce: tx.nonce, reason: outcome.reason },
        'broadcast rejected',
      );
      return;
    }
    memory.refused(batchId, undefined);
    memory.out(batchId, tx.txHash);
    if (outcome.kind === 'known') {
      logger.debug(
        { batchId, txHash: tx.txHash, reason: outcome.reason },
        'node already has this nonce/tx',
      );
    }
  }

  async function fill(nonce: number, attempt: number, why: string): Promise<void> {
    memory.fillers.set(nonce, { attempts: attempt + 1, lastAt: Date.now() });
    const filler = await effects.signFiller({ nonce, attempt });
    const outcome = await effects.broadcast(filler);
    logger.warn(
      {
        nonce,
        txHash: filler.txHash,
        attempt,
        why,
        outcome: outcome.kind,
        reason: 'reason' in outcome ? outcome.reason : undefined,
      },
      'filling a nonce gap with a 0-value self-transfer',
    );
  }

  async function sign(
    batch: OpenBatch,
    view: BatchView,
    action: Extract<Action, { kind: 'sign' }>,
  ): Promise<void> {
    const { batchId, tx } = batch;
    if (action.failure) {
      const attempt = memory.noteFailure(batchId);
      const reason =
        action.reason === 'reverted' && view.tx?.kind === 'mined'
          ? await chain.revertReason(batch, view.tx.blockNumber)
          : undefined;
      logger.error(
        { batchId, txHash: tx?.txHash, why: action.reason, reason, attempt },
        'anchor tx cannot anchor the batch; re-signing',
      );
    } else if (action.reason === 'fee-bump') {
      const since = memory.outSince(batchId);
      logger.warn(
        { batchId, txHash: tx?.txHash, nonce: tx?.nonce, waitedMs: since && Date.now() - since },
        'anchor tx not mined in time; bumping fees',
      );
    }
    const nonce = action.nonce === 'next' ? await nextNonce(view.head) : action.nonce;
    const signed = await effects.signAnchor({
      batch,
      nonce,
      gas: action.gas,
      ...(action.replaces ? { replaces: action.replaces } : {}),
    });
    // Stored BEFORE it is broadcast: a crash after this leaves a tx the next start
    // re-broadcasts (same bytes, same nonce), never one the database does not know.
    if (!(await effects.persist(signed, action.replaces?.rawTx))) {
      logger.warn({ batchId }, 'batch changed while signing; the new tx was discarded unsent');
      return;
    }
    memory.out(batchId, signed.txHash);
    memory.refused(batchId, undefined);
    logger.info(
      {
        batchId,
        txHash: signed.txHash,
        nonce,
        why: action.reason,
        replaces: signed.replaces ?? undefined,
      },
      action.replaces ? 'anchor tx re-signed and stored' : 'anchor tx signed and stored',
    );
    await send(batchId, signed);
  }

  function noteWait(batch: OpenBatch, view: BatchView, action: Extract<Action, { kind: 'wait' }>) {
    const { batchId, tx } = batch;
    switch (action.reason) {
      case 'anchored':
      case 'anchored-elsewhere': {
        memory.clearFailures(batchId);
        // Cached only when the receipt is at or below the head whose canonicity the next tick checks.
        const minedAt = view.tx?.kind === 'mined' ? view.tx.blockNumber : view.head;
        if (minedAt <= view.head) memory.confirmed.set(batchId, Date.now());
        return;
      }
      case 'pending-anchored':
        if (memory.firstTime(`${batchId}:${tx?.txHash}:${action.reason}`)) {
          logger.warn(
            { batchId, txHash: tx?.txHash },
            'batch anchored elsewhere while our tx is pending; it will revert harmlessly',
          );
        }
        return;
      case 'awaiting-indexer':
        if (memory.firstTime(`${batchId}:${tx?.txHash}:${action.reason}`)) {
          logger.warn(
            { batchId, txHash: tx?.txHash, status: batch.status },
            'included batch whose anchoring left the chain needs a new tx; waiting for the indexer to put it back to sent',
          );
        }
        return;
      default:
        return;
    }
  }

  return {
    fill,
    async act(batch, view, action) {
      const { batchId, tx } = batch;
      switch (action.kind) {
        case 'wait':
          return noteWait(batch, view, action);
        case 'estimate':
          return;
        case 'recordAnchoredElsewhere':
          await effects.recordAnchoredElsewhere(batchId);
          memory.confirmed.set(batchId, Date.now());
          logger.warn(
            { batchId, reason: action.reason },
            'batch is already anchored on chain; marked sent without sending',
          );
          return;
        case 'returnToBuilt':
          await effects.returnToBuilt(batchId);
          logger.warn(
            { batchId },
            'batch no longer anchored and no stored tx of ours; back to built',
          );
          return;
        case 'fail': {
          const attempt = memory.noteFailure(batchId);
          logger.error(
            { batchId, reason: action.reason, attempt },
            'anchoring step failed; will retry',
          );
          return;
        }
        case 'broadcast':
          if (!tx) return;
          logger.info(
            { batchId, txHash: tx.txHash, nonce: tx.nonce, status: batch.status },
            're-broadcasting the stored anchor tx (the node does not have it)',
          );
          return send(batchId, tx);
        case 'fill':
          for (const due of decideFills([action.nonce], memory.fillers, Date.now(), options)) {
            await fill(due.nonce, due.attempt, action.reason);
          }
          return;
        case 'sign':
          return sign(batch, view, action);
      }
    },
  };
}
