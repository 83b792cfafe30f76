import {
  type BatchResponse,
  buildMerkleTree,
  contentHashOf,
  loadProofVerifier,
} from '@streamanchor/protocol';
import type { AnchoredBatchLog, BatchEvent, FollowedLeaf, ProblemEvent } from './types';

export interface VerifyBatchOptions {
  /** The chain id the RPC serves: `anchor.chainId` must name it. */
  chainId?: number;
}

export interface BatchVerification {
  batch: BatchEvent;
  /** Every problem found (empty when `batch.verified`). */
  problems: ProblemEvent[];
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Checks the pages the gateway served for one anchored batch against its `BatchAnchored` log
 * (docs/protocol.md §10.1 steps 2–5): every page's `anchor` is the log's; the leaves are
 * `leafIndex` 0 … recordCount − 1, no gap, no repeat, no recordId twice; the tree rebuilt from
 * all their fields (OpenZeppelin StandardMerkleTree, §7) has the log's root; each leafHash is
 * its fields' hash and each proof folds to the root; each served payload hashes to its
 * contentHash. Pure (no I/O): give it the pages as served, in order.
 */
export async function verifyBatch(
  log: AnchoredBatchLog,
  pages: readonly BatchResponse[],
  options: VerifyBatchOptions = {},
): Promise<BatchVerification> {
  const problems: ProblemEvent[] = [];
  const report = (
    kind: ProblemEvent['kind'],
    detail: string,
    recordId?: ProblemEvent['recordId'],
  ) =>
    problems.push({
      type: 'problem',
      kind,
      batchId: log.batchId,
      ...(recordId === undefined ? {} : { recordId }),
      blockNumber: log.blockNumber,
      detail,
    });

  // The anchor each page states must be the log's (step 3, last sentence).
  for (const [index, { anchor }] of pages.entries()) {
    const differs: string[] = [];
    if (anchor.batchId !== log.batchId) differs.push(`batchId ${anchor.batchId}`);
    if (!same(anchor.merkleRoot, log.merkleRoot)) differs.push(`merkleRoot ${anchor.merkleRoot}`);
    if (anchor.recordCount !== log.recordCount) differs.push(`recordCount ${anchor.recordCount}`);
    if (!same(anchor.txHash, log.txHash)) differs.push(`txHash ${anchor.txHash}`);
    if (anchor.blockNumber !== log.blockNumber) differs.push(`blockNumber ${anchor.blockNumber}`);
    if (!same(anchor.blockHash, log.blockHash)) differs.push(`blockHash ${anchor.blockHash}`);
    if (anchor.logIndex !== log.logIndex) differs.push(`logIndex ${anchor.logIndex}`);
    if (!same(anchor.contract, log.contract)) differs.push(`contract ${anchor.contract}`);
    if (options.chainId !== undefined && anchor.chainId !== options.chainId) {
      differs.push(`chainId ${anchor.chainId}`);
    }
    if (differs.length > 0) {
      report(
        'anchor_mismatch',
        `page ${index + 1} states an anchoring other than the chain's log: ${differs.join(', ')}`,
      );
      break;
    }
  }

  const served = pages.flatMap((page) => page.leaves);
  if (served.length !== log.recordCount) {
    report(
      'leaf_count',
      `the gateway serves ${served.length} leaves; the chain's log says ${log.recordCount}`,
    );
  }
  const gaps: string[] = [];
  for (const [index, leaf] of served.entries()) {
    if (leaf.leafIndex !== index) gaps.push(`leaf ${index} has leafIndex ${leaf.leafIndex}`);
  }
  if (gaps.length > 0) {
    report(
      'leaf_gap',
      `leafIndex is not 0, 1, 2, …: ${gaps.slice(0, 3).join('; ')}${gaps.length > 3 ? ` (and ${gaps.length - 3} more)` : ''}`,
    );
  }
  const seen = new Set<string>();
  for (const leaf of served) {
    if (seen.has(leaf.recordId)) {
      report('duplicate_record', 'the batch serves this recordId in two leaves', leaf.recordId);
    }
    seen.add(leaf.recordId);
  }

  // A root commits to exactly its set of leaves: this shows the pages are the whole batch.
  let leafHashes: readonly string[] = [];
  if (served.length > 0) {
    const tree = await buildMerkleTree(served);
    leafHashes = tree.leafHashes;
    if (!same(tree.root, log.merkleRoot)) {
      report(
        'root_mismatch',
        `the ${served.length} leaves served rebuild root ${tree.root}, not the anchored ${log.merkleRoot}`,
      );
    }
  }

  const verifyProof = await loadProofVerifier();
  const merkleRoot = log.merkleRoot.toLowerCase();
  const leaves: FollowedLeaf[] = served.map((leaf, index) => {
    if (leafHashes[index] !== leaf.leafHash) {
      report(
        'bad_leaf_hash',
        `leafHash ${leaf.leafHash} is not the hash of its fields`,
        leaf.recordId,
      );
    } else if (!verifyProof({ ...leaf, merkleRoot })) {
      report('bad_proof', 'its proof does not fold to the anchored root', leaf.recordId);
    }
    let contentMatches: boolean | null = null;
    if (leaf.payload !== null) {
      contentMatches = contentHashOf(leaf.payload) === leaf.contentHash;
      if (!contentMatches) {
        report(
          'content_mismatch',
          `the payload served does not hash to its contentHash ${leaf.contentHash}`,
          leaf.recordId,
        );
      }
    }
    return {
      leafIndex: leaf.leafIndex,
      recordId: leaf.recordId,
      topic: leaf.topic,
      subject: leaf.subject,
      contentHash: leaf.contentHash,
      acceptedAt: leaf.acceptedAt,
      leafHash: leaf.leafHash,
      position: leaf.position,
      payload: leaf.payload,
      contentMatches,
    };
  });

  return {
    batch: { type: 'batch', ...log, verified: problems.length === 0, leaves },
    problems,
  };
}

/**
 * Whether a batch's leaves are anchored as served: the leaf set rebuilds the root and nothing
 * about the leaves themselves was reported (content and anchor statements aside, which do not
 * change what the root commits to).
 */
export function leavesAnchored(problems: readonly ProblemEvent[]): boolean {
  return !problems.some((problem) =>
    ['root_mismatch', 'leaf_count', 'leaf_gap', 'bad_leaf_hash', 'bad_proof'].includes(
      problem.kind,
    ),
  );
}
