// Pure: no anvil, no database. Every row of decide()'s table, branch by branch.
import { describe, expect, it } from 'vitest';
import {
  type BatchMemory,
  type BatchView,
  decide,
  decideFills,
  findNonceGaps,
  type OpenBatch,
  type StoredTx,
} from './decide';

const options = { confirmTimeoutMs: 30_000 };
const NOW = 1_000_000;
const tx: StoredTx = { nonce: 5, rawTx: '0x02aa', txHash: `0x${'11'.repeat(32)}` };
const batchBase = {
  batchId: `0x${'ab'.repeat(32)}`,
  merkleRoot: `0x${'cd'.repeat(32)}`,
  recordCount: 3,
} as const;

const built: OpenBatch = { ...batchBase, status: 'built' };
const sent: OpenBatch = { ...batchBase, status: 'sent', tx };
const included: OpenBatch = { ...batchBase, status: 'included', tx };
const sentNoTx: OpenBatch = { ...batchBase, status: 'sent' };
const includedNoTx: OpenBatch = { ...batchBase, status: 'included' };

const view = (over: Partial<BatchView> = {}): BatchView => ({
  head: 100n,
  anchored: false,
  minedNonce: 5,
  ...over,
});
const memory = (over: Partial<BatchMemory> = {}): BatchMemory => ({ now: NOW, ...over });
const ok = { kind: 'ok', gas: 90_000n } as const;
const alreadyAnchored = { kind: 'reverted', errorName: 'BatchAlreadyAnchored' } as const;

describe('decide', () => {
  it('default: a built batch not anchored is estimated, then signed at the next nonce', () => {
    expect(decide(built, view(), memory(), options)).toEqual({ kind: 'estimate' });
    expect(decide(built, view({ gas: ok }), memory(), options)).toEqual({
      kind: 'sign',
      reason: 'new',
      nonce: 'next',
      gas: 90_000n,
      failure: false,
    });
  });

  describe('built', () => {
    it('behavior: found anchored on chain → recordAnchoredElsewhere, no signature', () => {
      expect(decide(built, view({ anchored: true }), memory(), options)).toEqual({
        kind: 'recordAnchoredElsewhere',
        reason: 'found-anchored',
      });
    });

    it('behavior: BatchAlreadyAnchored at estimation → recordAnchoredElsewhere', () => {
      expect(decide(built, view({ gas: alreadyAnchored }), memory(), options)).toEqual({
        kind: 'recordAnchoredElsewhere',
        reason: 'estimate-already-anchored',
      });
    });

    it('error: another revert at estimation → fail (backs off)', () => {
      const action = decide(
        built,
        view({ gas: { kind: 'reverted', errorName: 'AccessControlUnauthorizedAccount' } }),
        memory(),
        options,
      );
      expect(action).toEqual({
        kind: 'fail',
        reason: 'gas estimate reverted: AccessControlUnauthorizedAccount',
      });
    });

    it('error: the estimate itself fails (RPC) → fail', () => {
      const action = decide(
        built,
        view({ gas: { kind: 'failed', reason: 'timeout' } }),
        memory(),
        options,
      );
      expect(action).toEqual({ kind: 'fail', reason: 'gas estimate failed: timeout' });
    });

    it('behavior: backed off after a failure → wait, even before reading the chain flag', () => {
      expect(decide(built, view({ gas: ok }), memory({ retryAt: NOW + 1 }), options)).toEqual({
        kind: 'wait',
        reason: 'backed-off',
      });
      expect(decide(built, view({ gas: ok }), memory({ retryAt: NOW }), options).kind).toBe('sign');
    });
  });

  describe('no tx of ours (anchored by someone else before we signed)', () => {
    it('behavior: still anchored → wait', () => {
      for (const batch of [sentNoTx, includedNoTx]) {
        expect(decide(batch, view({ anchored: true }), memory(), options)).toEqual({
          kind: 'wait',
          reason: 'anchored-elsewhere',
        });
      }
    });

    it('behavior: sent and the outside anchoring left the chain → returnToBuilt', () => {
      expect(decide(sentNoTx, view(), memory(), options)).toEqual({ kind: 'returnToBuilt' });
    });

    it('behavior: included and no longer anchored → wait for the indexer to revert it', () => {
      expect(decide(includedNoTx, view(), memory(), options)).toEqual({
        kind: 'wait',
        reason: 'awaiting-indexer',
      });
    });
  });

  describe('mined receipt', () => {
    it('behavior: success → wait anchored (sent or included alike)', () => {
      for (const batch of [sent, included]) {
        const mined = view({
          minedNonce: 6,
          anchored: true,
          tx: { kind: 'mined', success: true, blockNumber: 99n },
        });
        expect(decide(batch, mined, memory(), options)).toEqual({
          kind: 'wait',
          reason: 'anchored',
        });
      }
    });

    it('behavior: reverted receipt but the batch is anchored (by another tx) → wait', () => {
      const reverted = view({
        minedNonce: 6,
        anchored: true,
        tx: { kind: 'mined', success: false, blockNumber: 99n },
      });
      expect(decide(sent, reverted, memory(), options)).toEqual({
        kind: 'wait',
        reason: 'anchored-elsewhere',
      });
    });

    it('error: reverted receipt, batch not anchored → re-sign at a new nonce, counted as a failure', () => {
      const reverted = view({
        minedNonce: 6,
        tx: { kind: 'mined', success: false, blockNumber: 99n },
      });
      expect(decide(sent, reverted, memory(), options)).toEqual({ kind: 'estimate' });
      expect(decide(sent, { ...reverted, gas: ok }, memory(), options)).toEqual({
        kind: 'sign',
        reason: 'reverted',
        nonce: 'next',
        gas: 90_000n,
        replaces: tx,
        failure: true,
      });
    });

    it('behavior: reverted receipt, re-sign backed off → wait', () => {
      const reverted = view({
        minedNonce: 6,
        gas: ok,
        tx: { kind: 'mined', success: false, blockNumber: 99n },
      });
      expect(decide(sent, reverted, memory({ retryAt: NOW + 5_000 }), options)).toEqual({
        kind: 'wait',
        reason: 'backed-off',
      });
    });

    it('behavior: re-sign, but the estimate says BatchAlreadyAnchored (the chain moved on) → wait', () => {
      const reverted = view({
        minedNonce: 6,
        gas: alreadyAnchored,
        tx: { kind: 'mined', success: false, blockNumber: 99n },
      });
      expect(decide(sent, reverted, memory(), options)).toEqual({
        kind: 'wait',
        reason: 'anchored-elsewhere',
      });
    });

    it('error: re-sign, the estimate fails otherwise → fail', () => {
      const reverted = view({
        minedNonce: 6,
        gas: { kind: 'failed', reason: 'boom' },
        tx: { kind: 'mined', success: false, blockNumber: 99n },
      });
      expect(decide(sent, reverted, memory(), options).kind).toBe('fail');
    });
  });

  describe('no receipt, nonce used by another tx', () => {
    it('behavior: batch anchored (an earlier signature of the same nonce mined) → wait', () => {
      expect(
        decide(
          sent,
          view({ minedNonce: 6, anchored: true, tx: { kind: 'absent' } }),
          memory(),
          options,
        ),
      ).toEqual({
        kind: 'wait',
        reason: 'anchored-elsewhere',
      });
    });

    it('behavior: batch not anchored → re-sign at a new nonce', () => {
      const taken = view({ minedNonce: 6, gas: ok, tx: { kind: 'absent' } });
      expect(decide(sent, taken, memory(), options)).toMatchObject({
        kind: 'sign',
        reason: 'nonce-taken',
        nonce: 'next',
        replaces: tx,
        failure: true,
      });
    });

    it('behavior: included batch that needs a new tx → wait for the indexer (the ledger re-signs sent batches only)', () => {
      const taken = view({ minedNonce: 6, gas: ok, tx: { kind: 'absent' } });
      expect(decide(included, taken, memory(), options)).toEqual({
        kind: 'wait',
        reason: 'awaiting-indexer',
      });
    });
  });

  describe('nonce still free', () => {
    it('behavior: tx reorged out (not in the pool) → broadcast the same bytes, sent or included alike', () => {
      for (const batch of [sent, included]) {
        expect(decide(batch, view({ tx: { kind: 'absent' } }), memory(), options)).toEqual({
          kind: 'broadcast',
          reason: 'not-in-pool',
        });
      }
    });

    it('behavior: a nonce gap below our tx does not matter to the decision: still broadcast (gaps are filled apart)', () => {
      expect(
        decide(sent, view({ minedNonce: 3, tx: { kind: 'absent' } }), memory(), options),
      ).toEqual({
        kind: 'broadcast',
        reason: 'not-in-pool',
      });
    });

    it('behavior: not in the pool even though anchored elsewhere → broadcast anyway (keeps the nonce used; reverts harmlessly)', () => {
      expect(
        decide(sent, view({ anchored: true, tx: { kind: 'absent' } }), memory(), options),
      ).toEqual({
        kind: 'broadcast',
        reason: 'not-in-pool',
      });
    });

    it('error: rejected broadcast → re-sign at the same nonce with bumped fees', () => {
      const absent = view({ gas: ok, tx: { kind: 'absent' } });
      expect(decide(sent, absent, memory({ rejected: true }), options)).toEqual({
        kind: 'sign',
        reason: 'rejected',
        nonce: 5,
        gas: 90_000n,
        replaces: tx,
        failure: true,
      });
    });

    it('error: rejected broadcast of an anchored batch → fill the nonce with a self-transfer', () => {
      const absent = view({ anchored: true, tx: { kind: 'absent' } });
      expect(decide(sent, absent, memory({ rejected: true }), options)).toEqual({
        kind: 'fill',
        nonce: 5,
        reason: 'refused-tx-of-anchored-batch',
      });
    });

    it('error: rejected broadcast of an included batch → wait for the indexer', () => {
      const absent = view({ gas: ok, tx: { kind: 'absent' } });
      expect(decide(included, absent, memory({ rejected: true }), options)).toEqual({
        kind: 'wait',
        reason: 'awaiting-indexer',
      });
    });

    it('behavior: in the pool → wait pending', () => {
      expect(
        decide(
          sent,
          view({ tx: { kind: 'pooled' } }),
          memory({ pendingSince: NOW - 1_000 }),
          options,
        ),
      ).toEqual({
        kind: 'wait',
        reason: 'pending',
      });
      expect(decide(sent, view({ tx: { kind: 'pooled' } }), memory(), options)).toEqual({
        kind: 'wait',
        reason: 'pending',
      });
    });

    it('behavior: in the pool longer than confirmTimeoutMs → fee bump at the same nonce (not a failure)', () => {
      const pooled = view({ tx: { kind: 'pooled' } });
      const late = memory({ pendingSince: NOW - 30_001 });
      expect(decide(sent, pooled, late, options)).toEqual({ kind: 'estimate' });
      expect(decide(sent, { ...pooled, gas: ok }, late, options)).toEqual({
        kind: 'sign',
        reason: 'fee-bump',
        nonce: 5,
        gas: 90_000n,
        replaces: tx,
        failure: false,
      });
      expect(decide(sent, pooled, memory({ pendingSince: NOW - 30_000 }), options)).toEqual({
        kind: 'wait',
        reason: 'pending',
      });
    });

    it('behavior: a fee bump is not held back by a backoff', () => {
      const pooled = view({ gas: ok, tx: { kind: 'pooled' } });
      const late = memory({ pendingSince: NOW - 60_000, retryAt: NOW + 60_000 });
      expect(decide(sent, pooled, late, options).kind).toBe('sign');
    });

    it('behavior: in the pool while the batch is anchored elsewhere → wait (no bump for a tx that will revert)', () => {
      const pooled = view({ anchored: true, tx: { kind: 'pooled' } });
      expect(decide(sent, pooled, memory({ pendingSince: NOW - 60_000 }), options)).toEqual({
        kind: 'wait',
        reason: 'pending-anchored',
      });
    });

    it('behavior: an included batch pooled too long → wait for the indexer before re-signing', () => {
      const pooled = view({ gas: ok, tx: { kind: 'pooled' } });
      expect(decide(included, pooled, memory({ pendingSince: NOW - 60_000 }), options)).toEqual({
        kind: 'wait',
        reason: 'awaiting-indexer',
      });
    });
  });
});

describe('findNonceGaps', () => {
  it('default: no gap when every nonce up to the highest waiting one is held', () => {
    expect(
      findNonceGaps({
        minedNonce: 3,
        pendingNonce: 3,
        held: new Set([0, 1, 2, 3, 4, 5]),
        waiting: [3, 4, 5],
      }),
    ).toEqual([]);
  });

  it('behavior: a nonce no row holds below a waiting tx is a gap', () => {
    expect(
      findNonceGaps({
        minedNonce: 1,
        pendingNonce: 1,
        held: new Set([1, 3, 5]),
        waiting: [1, 3, 5],
      }),
    ).toEqual([2, 4]);
  });

  it('behavior: nonces the pool already fills (below the pending count) are not gaps', () => {
    expect(
      findNonceGaps({ minedNonce: 1, pendingNonce: 3, held: new Set([1, 4]), waiting: [1, 4] }),
    ).toEqual([3]);
  });

  it('behavior: nothing waits above the mined nonce → no gap', () => {
    expect(findNonceGaps({ minedNonce: 4, pendingNonce: 4, held: new Set(), waiting: [] })).toEqual(
      [],
    );
  });

  it('behavior: a nonce held by any row (even a final one) is never filled', () => {
    expect(
      findNonceGaps({ minedNonce: 1, pendingNonce: 1, held: new Set([1, 2]), waiting: [2] }),
    ).toEqual([]);
  });

  it('behavior: at most `limit` gaps', () => {
    expect(
      findNonceGaps({
        minedNonce: 0,
        pendingNonce: 0,
        held: new Set([10]),
        waiting: [10],
        limit: 3,
      }),
    ).toEqual([0, 1, 2]);
  });
});

describe('decideFills', () => {
  it('default: a new gap is filled with attempt 0', () => {
    expect(decideFills([7], new Map(), NOW, options)).toEqual([{ nonce: 7, attempt: 0 }]);
  });

  it('behavior: a gap filled within confirmTimeoutMs is left alone; later it is refilled with a higher attempt (bumped fees)', () => {
    const fillers = new Map([[7, { attempts: 1, lastAt: NOW - 1_000 }]]);
    expect(decideFills([7], fillers, NOW, options)).toEqual([]);
    expect(decideFills([7], fillers, NOW + 30_000, options)).toEqual([{ nonce: 7, attempt: 1 }]);
  });
});
