import { randomBytes } from 'node:crypto';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  type BatchLeaf,
  type BatchResponse,
  type Bytes32,
  canonicalPayload,
  contentHashOf,
  LEAF_ENCODING,
  leafHash,
  leafValue,
} from '@streamanchor/protocol';
import { describe, expect, it } from 'vitest';
import { ChainFollowerError } from '../errors';
import { fetchBatchPages } from './gateway';
import { AnchoredRecordLedger } from './ledger';
import type { AnchoredBatchLog, ProblemEvent } from './types';
import { leavesAnchored, verifyBatch } from './verify-batch';

const random32 = (): Bytes32 => `0x${randomBytes(32).toString('hex')}`;
const CONTRACT = '0x5fbdb2315678afecb367f032d93f642f64180aa3';

/** A batch as the writer builds it (OpenZeppelin's tree), its log, and its leaves as §3.10 serves them. */
function makeBatch(count: number, topic = 'demo') {
  const payloads = Array.from({ length: count }, (_, i) => canonicalPayload({ n: i }));
  const records = payloads.map((payload, i) => ({
    recordId: random32(),
    topic,
    subject: 'alice',
    contentHash: contentHashOf(payload),
    acceptedAt: 1_765_000_000_000 + i,
  }));
  const tree = StandardMerkleTree.of(records.map(leafValue), [...LEAF_ENCODING]);
  const log: AnchoredBatchLog = {
    batchId: random32(),
    merkleRoot: tree.root as Bytes32,
    recordCount: count,
    writer: '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266',
    contract: CONTRACT,
    blockNumber: 42,
    blockHash: random32(),
    txHash: random32(),
    logIndex: 0,
  };
  const leaves: BatchLeaf[] = records.map((record, i) => ({
    leafIndex: i,
    ...record,
    leafHash: leafHash(record),
    proof: tree.getProof(i) as Bytes32[],
    position: i + 1,
    payload: payloads[i]!,
  }));
  return { log, leaves };
}

/** The leaves in pages of `size`, each with the log's anchor, `next` as the gateway sets it. */
function pagesOf(log: AnchoredBatchLog, leaves: BatchLeaf[], size = 2): BatchResponse[] {
  const anchor = {
    status: 'included' as const,
    confirmations: 3,
    revision: 1,
    batchId: log.batchId,
    merkleRoot: log.merkleRoot,
    recordCount: log.recordCount,
    chainId: 31337,
    contract: log.contract as Bytes32,
    txHash: log.txHash,
    blockNumber: log.blockNumber,
    blockHash: log.blockHash,
    logIndex: log.logIndex,
  };
  const pages: BatchResponse[] = [];
  for (let from = 0; from < leaves.length; from += size) {
    const next = from + size < leaves.length ? from + size : null;
    pages.push({ anchor, leaves: leaves.slice(from, from + size), next });
  }
  return pages;
}

const kinds = (problems: ProblemEvent[]) => problems.map((problem) => problem.kind).sort();

describe('verifyBatch', () => {
  it('default: pages that are the whole anchored batch verify; every leaf with its payload checked', async () => {
    const { log, leaves } = makeBatch(5);
    const { batch, problems } = await verifyBatch(log, pagesOf(log, leaves), { chainId: 31337 });
    expect(problems).toEqual([]);
    expect(batch).toMatchObject({ type: 'batch', ...log, verified: true });
    expect(
      batch.leaves.map((leaf) => [leaf.leafIndex, leaf.recordId, leaf.contentMatches]),
    ).toEqual(leaves.map((leaf) => [leaf.leafIndex, leaf.recordId, true]));
  });

  it('behavior: a one-leaf batch (empty proof) and pruned payloads (null) verify', async () => {
    const { log, leaves } = makeBatch(1);
    const pruned = leaves.map((leaf) => ({ ...leaf, payload: null }));
    const { batch, problems } = await verifyBatch(log, pagesOf(log, pruned));
    expect(problems).toEqual([]);
    expect(batch.leaves[0]).toMatchObject({ payload: null, contentMatches: null });
  });

  it('error: a payload other than the anchored content is content_mismatch; the leaves stay anchored', async () => {
    const { log, leaves } = makeBatch(3);
    leaves[1] = { ...leaves[1]!, payload: '{"n":999}' };
    const { batch, problems } = await verifyBatch(log, pagesOf(log, leaves));
    expect(problems).toEqual([
      expect.objectContaining({
        kind: 'content_mismatch',
        batchId: log.batchId,
        recordId: leaves[1]!.recordId,
        blockNumber: 42,
      }),
    ]);
    expect(batch.verified).toBe(false);
    expect(batch.leaves[1]!.contentMatches).toBe(false);
    expect(leavesAnchored(problems)).toBe(true);
  });

  it('error: a leaf left out is leaf_count and root_mismatch; a leaf added, too', async () => {
    const { log, leaves } = makeBatch(4);
    const dropped = await verifyBatch(log, pagesOf(log, leaves.slice(0, 3)));
    expect(kinds(dropped.problems)).toEqual(['leaf_count', 'root_mismatch']);
    expect(leavesAnchored(dropped.problems)).toBe(false);

    const extra = makeBatch(1).leaves[0]!;
    const added = await verifyBatch(log, pagesOf(log, [...leaves, { ...extra, leafIndex: 4 }]));
    expect(kinds(added.problems)).toEqual(['bad_proof', 'leaf_count', 'root_mismatch']);
  });

  it("error: a changed leaf field is root_mismatch and bad_leaf_hash (the leafHash no longer its fields')", async () => {
    const { log, leaves } = makeBatch(4);
    leaves[2] = { ...leaves[2]!, subject: 'mallory' };
    const { problems } = await verifyBatch(log, pagesOf(log, leaves));
    expect(kinds(problems)).toEqual(['bad_leaf_hash', 'root_mismatch']);
    expect(problems.find((p) => p.kind === 'bad_leaf_hash')!.recordId).toBe(leaves[2]!.recordId);
  });

  it('error: a wrong proof is bad_proof; leafIndex out of order is leaf_gap; a repeated recordId is duplicate_record', async () => {
    const { log, leaves } = makeBatch(4);
    const badProof = leaves.map((leaf, i) => (i === 0 ? { ...leaf, proof: [random32()] } : leaf));
    expect(kinds((await verifyBatch(log, pagesOf(log, badProof))).problems)).toEqual(['bad_proof']);

    const renumbered = leaves.map((leaf, i) => ({ ...leaf, leafIndex: i === 3 ? 7 : i }));
    expect(kinds((await verifyBatch(log, pagesOf(log, renumbered))).problems)).toEqual([
      'leaf_gap',
    ]);

    const twice = [...leaves.slice(0, 3), { ...leaves[0]!, leafIndex: 3 }];
    expect(kinds((await verifyBatch(log, pagesOf(log, twice))).problems)).toEqual([
      'duplicate_record',
      'root_mismatch',
    ]);
  });

  it("error: an anchor that is not the log's (another block, contract or chain) is anchor_mismatch", async () => {
    const { log, leaves } = makeBatch(2);
    const pages = pagesOf(log, leaves, 1);
    pages[1] = { ...pages[1]!, anchor: { ...pages[1]!.anchor, blockNumber: 41 } };
    const { problems } = await verifyBatch(log, pages);
    expect(problems).toEqual([
      expect.objectContaining({
        kind: 'anchor_mismatch',
        detail: expect.stringContaining('page 2'),
      }),
    ]);
    const otherChain = await verifyBatch(log, pagesOf(log, leaves), { chainId: 1 });
    expect(kinds(otherChain.problems)).toEqual(['anchor_mismatch']);
  });
});

describe('AnchoredRecordLedger', () => {
  const leavesOf = async (log: AnchoredBatchLog, leaves: BatchLeaf[]) =>
    (await verifyBatch(log, pagesOf(log, leaves))).batch.leaves;

  it('default: a served record that an anchored batch holds with the same fields settles with no problem', async () => {
    const { log, leaves } = makeBatch(2);
    const ledger = new AnchoredRecordLedger();
    expect(ledger.expect({ ...leaves[0]!, batchId: log.batchId }, 0)).toBeUndefined();
    expect(ledger.pending).toBe(1);
    expect(ledger.namedBatches()).toEqual([log.batchId]);
    expect(ledger.addBatch(log.batchId, 42, await leavesOf(log, leaves))).toEqual([]);
    expect(ledger.pending).toBe(0);
    // Served after the batch was checked: settled at once.
    expect(ledger.expect(leaves[1]!, 10)).toBeUndefined();
    expect(ledger.pending).toBe(0);
  });

  it('error: served_not_anchored after the grace, for other fields, or when its named batch does not hold it', async () => {
    const { log, leaves } = makeBatch(2);
    const ledger = new AnchoredRecordLedger();
    const stranger = makeBatch(1).leaves[0]!;
    ledger.expect(stranger, 0);
    ledger.addBatch(log.batchId, 42, await leavesOf(log, leaves));
    expect(ledger.expired(999, 1000)).toEqual([]);
    expect(ledger.expired(1000, 1000)).toEqual([
      expect.objectContaining({ kind: 'served_not_anchored', recordId: stranger.recordId }),
    ]);
    expect(ledger.expect({ ...leaves[0]!, acceptedAt: 1 }, 0)).toMatchObject({
      kind: 'served_not_anchored',
      detail: expect.stringContaining('acceptedAt 1'),
    });
    expect(ledger.expect({ ...stranger, batchId: log.batchId }, 0)).toMatchObject({
      kind: 'served_not_anchored',
      batchId: log.batchId,
      detail: expect.stringContaining('does not hold it'),
    });
  });

  it('error: one recordId in two batches is duplicate_record', async () => {
    const first = makeBatch(2);
    const ledger = new AnchoredRecordLedger();
    ledger.addBatch(first.log.batchId, 42, await leavesOf(first.log, first.leaves));
    const second = makeBatch(1);
    const again = [{ ...first.leaves[1]!, leafIndex: 0 }];
    expect(ledger.addBatch(second.log.batchId, 43, await leavesOf(second.log, again))).toEqual([
      expect.objectContaining({
        kind: 'duplicate_record',
        batchId: second.log.batchId,
        recordId: first.leaves[1]!.recordId,
      }),
    ]);
  });
});

describe('fetchBatchPages', () => {
  /** A gateway answering from a list: each call takes the next answer. */
  const scripted = (answers: (() => Response)[]) => {
    const urls: string[] = [];
    const fetch = async (url: string) => {
      urls.push(url);
      return answers.shift()!();
    };
    return { fetch, urls };
  };
  const problem = (status: number, code: string, retryAfter?: string) => () =>
    new Response(
      JSON.stringify({ type: `urn:streamanchor:problem:${code}`, status, code, title: code }),
      {
        status,
        headers: {
          'content-type': 'application/problem+json',
          ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
        },
      },
    );

  it("behavior: asks again after 404 batch_pending's Retry-After, then follows next to the last page", async () => {
    const { log, leaves } = makeBatch(3);
    const pages = pagesOf(log, leaves, 2);
    const { fetch, urls } = scripted([
      problem(404, 'batch_pending', '0.01'),
      () => Response.json(pages[0]),
      () => Response.json(pages[1]),
    ]);
    const retries: string[] = [];
    const served = await fetchBatchPages(
      {
        gatewayUrl: 'http://gateway/',
        token: 't',
        fetch,
        onRetry: (detail) => retries.push(detail),
      },
      log.batchId,
      { notServedAfterMs: 60_000 },
    );
    expect(served).toEqual({ served: true, pages });
    expect(urls).toEqual([
      `http://gateway/v1/batches/${log.batchId}?from=0&limit=1000`,
      `http://gateway/v1/batches/${log.batchId}?from=0&limit=1000`,
      `http://gateway/v1/batches/${log.batchId}?from=2&limit=1000`,
    ]);
    expect(retries).toEqual([expect.stringContaining('404 batch_pending')]);
  });

  it('error: a batch still 404 past the bound is not served; a body that is not a batch page is malformed; 401 throws', async () => {
    const { log } = makeBatch(1);
    const notFound = scripted([
      problem(404, 'batch_not_found', '0.01'),
      problem(404, 'batch_not_found', '0.01'),
    ]);
    const gone = await fetchBatchPages(
      { gatewayUrl: 'http://gateway', fetch: notFound.fetch },
      log.batchId,
      {
        notServedAfterMs: 0,
      },
    );
    expect(gone).toMatchObject({
      served: false,
      reason: 'not_served',
      detail: expect.stringContaining('404 batch_not_found'),
    });

    const garbage = scripted([() => Response.json({ leaves: 'none' })]);
    expect(
      await fetchBatchPages({ gatewayUrl: 'http://gateway', fetch: garbage.fetch }, log.batchId, {
        notServedAfterMs: 0,
      }),
    ).toMatchObject({ served: false, reason: 'malformed' });

    const refused = scripted([problem(401, 'unauthorized')]);
    await expect(
      fetchBatchPages({ gatewayUrl: 'http://gateway', fetch: refused.fetch }, log.batchId, {
        notServedAfterMs: 0,
      }),
    ).rejects.toBeInstanceOf(ChainFollowerError);
  });
});
