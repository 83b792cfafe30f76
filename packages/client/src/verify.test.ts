import { randomBytes } from 'node:crypto';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { deployStreamAnchor, streamAnchorAbi } from '@streamanchor/contracts';
import {
  type Bytes32,
  canonicalPayload,
  contentHashOf,
  LEAF_ENCODING,
  leafHash,
  leafValue,
  type Receipt,
} from '@streamanchor/protocol';
import { ANVIL_TEST_PRIVATE_KEY, type Anvil, getFreePort, startAnvil } from '@streamanchor/testing';
import { createPublicClient, createWalletClient, http, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerificationError } from './errors';
import { createReceiptVerifier, verifyReceipt } from './verify';

const random32 = (): Bytes32 => `0x${randomBytes(32).toString('hex')}`;

let anvil: Anvil;
let contract: `0x${string}`;
let receipts: Receipt[];
let publicClient: PublicClient;
/** JSON-RPC methods the counting client sent, in order. */
const rpcCalls: string[] = [];

/** Builds a batch like the chain-writer does, anchors it on a real anvil, and returns its receipts. */
async function anchorBatch(count: number): Promise<Receipt[]> {
  const records = Array.from({ length: count }, (_, i) => ({
    recordId: random32(),
    topic: 'demo',
    subject: 'alice',
    contentHash: contentHashOf(canonicalPayload({ n: i, text: `record ${i}` })),
    acceptedAt: 1_760_000_000_000 + i,
  }));
  const tree = StandardMerkleTree.of(records.map(leafValue), [...LEAF_ENCODING]);
  const batchId = random32();
  const account = privateKeyToAccount(ANVIL_TEST_PRIVATE_KEY);
  const wallet = createWalletClient({ account, chain: foundry, transport: http(anvil.rpcUrl) });
  const txHash = await wallet.writeContract({
    address: contract,
    abi: streamAnchorAbi,
    functionName: 'anchorBatch',
    args: [batchId, tree.root as Bytes32, count],
  });
  const txReceipt = await publicClient.waitForTransactionReceipt({ hash: txHash });
  const log = txReceipt.logs[0]!;
  return records.map((record, i) => ({
    status: 'included' as const,
    confirmations: 1,
    revision: 1,
    ...record,
    leafHash: leafHash(record),
    leafIndex: i,
    proof: tree.getProof(i) as Bytes32[],
    batchId,
    merkleRoot: tree.root as Bytes32,
    recordCount: count,
    chainId: foundry.id,
    contract,
    txHash,
    blockNumber: Number(txReceipt.blockNumber),
    blockHash: txReceipt.blockHash,
    logIndex: log.logIndex,
  }));
}

beforeAll(async () => {
  anvil = await startAnvil();
  publicClient = createPublicClient({ chain: foundry, transport: http(anvil.rpcUrl) });
  const account = privateKeyToAccount(ANVIL_TEST_PRIVATE_KEY);
  const walletClient = createWalletClient({
    account,
    chain: foundry,
    transport: http(anvil.rpcUrl),
  });
  ({ address: contract } = await deployStreamAnchor({ walletClient, publicClient }));
  receipts = await anchorBatch(7);
});

afterAll(async () => {
  await anvil?.stop();
});

/** A client that records every JSON-RPC method it sends. */
function countingClient() {
  return createPublicClient({
    transport: http(anvil.rpcUrl, {
      onFetchRequest: async (request) => {
        const body = (await request.clone().json()) as { method: string } | { method: string }[];
        for (const call of Array.isArray(body) ? body : [body]) rpcCalls.push(call.method);
      },
    }),
  });
}

describe('verifyReceipt', () => {
  it('default: every receipt of an anchored batch is valid, with one getLogs call for the batch', async () => {
    rpcCalls.length = 0;
    const verifier = createReceiptVerifier({
      publicClient: countingClient(),
      expectedContract: contract.toLowerCase(),
      expectedChainId: foundry.id,
    });
    const results = await Promise.all(
      receipts.map((receipt) =>
        verifier.verify(receipt, { expectedContentHash: receipt.contentHash }),
      ),
    );
    const head = Number(await publicClient.getBlockNumber({ cacheTime: 0 }));
    for (const result of results) {
      expect(result).toEqual({
        valid: true,
        proofValid: true,
        leafMatches: true,
        contentMatches: true,
        contractMatches: true,
        chainIdMatches: true,
        reorged: false,
        onChain: {
          found: true,
          rootMatches: true,
          recordCount: 7,
          recordCountMatches: true,
          blockMatches: true,
          txMatches: true,
          chainIdMatches: true,
          canonical: true,
          canonicalBlockHash: receipts[0]!.blockHash,
          headBlockNumber: head,
          confirmations: head - receipts[0]!.blockNumber + 1,
          final: null,
          finalClaimHolds: null,
        },
        problems: [],
      });
    }
    // The batch's block and the head were each read once for the 7 concurrent checks.
    expect(rpcCalls.filter((method) => method === 'eth_getBlockByNumber')).toHaveLength(1);
    expect(rpcCalls.filter((method) => method === 'eth_blockNumber')).toHaveLength(1);
    expect(rpcCalls.filter((method) => method === 'eth_getLogs')).toHaveLength(1);
    // Verifying again hits the cache.
    await verifier.verify(receipts[0]!);
    expect(rpcCalls.filter((method) => method === 'eth_getLogs')).toHaveLength(1);
  });

  it('behavior: works from an rpcUrl alone', async () => {
    const result = await verifyReceipt(receipts[3]!, { rpcUrl: anvil.rpcUrl });
    expect(result.valid).toBe(true);
    expect(result.contentMatches).toBeNull();
  });

  it('error: a wrong merkle root is invalid (proof and on-chain root both fail)', async () => {
    const tampered = { ...receipts[0]!, merkleRoot: random32() };
    const result = await verifyReceipt(tampered, { publicClient });
    expect(result.valid).toBe(false);
    expect(result.proofValid).toBe(false);
    expect(result.onChain).toMatchObject({ found: true, rootMatches: false });
  });

  it('error: a wrong proof is invalid', async () => {
    const tampered = { ...receipts[0]!, proof: receipts[1]!.proof };
    const result = await verifyReceipt(tampered, { publicClient });
    expect(result).toMatchObject({ valid: false, proofValid: false, leafMatches: true });
    expect(result.onChain.rootMatches).toBe(true);
    const flipped = { ...receipts[2]!, proof: [random32(), ...receipts[2]!.proof.slice(1)] };
    expect((await verifyReceipt(flipped, { publicClient })).valid).toBe(false);
  });

  it('error: a wrong content hash is invalid, even with a recomputed leaf hash', async () => {
    const contentHash = contentHashOf('{"n":999}');
    const tampered = { ...receipts[4]!, contentHash };
    const result = await verifyReceipt(tampered, { publicClient });
    expect(result).toMatchObject({ valid: false, leafMatches: false, proofValid: false });
    const relabelled = { ...tampered, leafHash: leafHash(tampered) };
    expect(await verifyReceipt(relabelled, { publicClient })).toMatchObject({
      valid: false,
      leafMatches: true,
      proofValid: false,
    });
  });

  it('error: a self-consistent receipt for a batch that was never anchored is invalid', async () => {
    const record = { ...receipts[0]!, recordId: random32() };
    const tree = StandardMerkleTree.of([leafValue(record)], [...LEAF_ENCODING]);
    const forged: Receipt = {
      ...record,
      leafHash: leafHash(record),
      proof: tree.getProof(0) as Bytes32[],
      merkleRoot: tree.root as Bytes32,
      recordCount: 1,
    };
    const result = await verifyReceipt(forged, { publicClient });
    expect(result).toMatchObject({ valid: false, proofValid: true, leafMatches: true });
    expect(result.onChain).toMatchObject({
      found: true,
      rootMatches: false,
      recordCountMatches: false,
    });
    const unknownBatch = await verifyReceipt({ ...forged, batchId: random32() }, { publicClient });
    expect(unknownBatch).toMatchObject({ valid: false, proofValid: true });
    expect(unknownBatch.onChain).toMatchObject({
      found: false,
      rootMatches: false,
      recordCount: null,
    });
  });

  it('error: wrong contract, chain, tx, block or expected content hash are each invalid', async () => {
    const receipt = receipts[5]!;
    const check = (r: Receipt, extra: object = {}) => verifyReceipt(r, { publicClient, ...extra });
    expect(await check(receipt, { expectedContract: `0x${'11'.repeat(20)}` })).toMatchObject({
      valid: false,
      contractMatches: false,
    });
    expect(await check(receipt, { expectedChainId: 1 })).toMatchObject({
      valid: false,
      chainIdMatches: false,
    });
    const otherChain = await check({ ...receipt, chainId: 1 });
    expect(otherChain.valid).toBe(false);
    expect(otherChain.onChain.chainIdMatches).toBe(false);
    expect((await check({ ...receipt, txHash: random32() })).onChain).toMatchObject({
      found: true,
      txMatches: false,
    });
    expect((await check({ ...receipt, txHash: random32() })).valid).toBe(false);
    const wrongBlock = await check({
      ...receipt,
      blockNumber: receipt.blockNumber - 1,
      blockHash: random32(),
    });
    expect(wrongBlock).toMatchObject({ valid: false });
    expect(wrongBlock.onChain.found).toBe(false);
    expect(await check(receipt, { expectedContentHash: random32() })).toMatchObject({
      valid: false,
      contentMatches: false,
    });
  });

  it('behavior: confirmations come from the chain, and a final claim needs finalityDepth confirmations', async () => {
    const receipt = receipts[6]!;
    const head = Number(await publicClient.getBlockNumber({ cacheTime: 0 }));
    const depth = head - receipt.blockNumber + 1 + 3; // three blocks short of final
    const included = await verifyReceipt(receipt, { publicClient, finalityDepth: depth });
    expect(included).toMatchObject({ valid: true, problems: [] });
    expect(included.onChain).toMatchObject({
      canonical: true,
      confirmations: depth - 3,
      final: false,
      finalClaimHolds: null,
    });

    const claimed: Receipt = { ...receipt, status: 'final', confirmations: depth, revision: 2 };
    const early = await verifyReceipt(claimed, { publicClient, finalityDepth: depth });
    expect(early.valid).toBe(false);
    expect(early.onChain).toMatchObject({ final: false, finalClaimHolds: false });
    expect(early.problems).toEqual([
      `the receipt claims final, but the chain has ${depth - 3} confirmations, fewer than finalityDepth ${depth}`,
    ]);
    // Without a finalityDepth the claim is reported, not judged.
    expect(await verifyReceipt(claimed, { publicClient })).toMatchObject({
      valid: true,
      onChain: { final: null, finalClaimHolds: null },
    });

    await publicClient.request({ method: 'anvil_mine', params: ['0x3'] } as never);
    const deep = await verifyReceipt(claimed, { publicClient, finalityDepth: depth });
    expect(deep).toMatchObject({ valid: true, problems: [] });
    expect(deep.onChain).toMatchObject({
      confirmations: depth,
      final: true,
      finalClaimHolds: true,
    });
  });

  it('error: a reorged receipt is never valid, even when its block is canonical', async () => {
    const reorged: Receipt = { ...receipts[1]!, status: 'reorged', confirmations: 0, revision: 2 };
    const result = await verifyReceipt(reorged, { publicClient, finalityDepth: 1 });
    expect(result).toMatchObject({ valid: false, reorged: true, proofValid: true });
    expect(result.onChain).toMatchObject({ found: true, canonical: true, finalClaimHolds: null });
    expect(result.problems).toEqual([
      `the receipt is a reorged notice (revision 2): block ${reorged.blockNumber} (${reorged.blockHash}) left the canonical chain; a receipt with a higher revision follows`,
    ]);
  });

  it('behavior: after a reorg drops the anchoring block, the same receipt is not canonical', async () => {
    const [receipt] = await anchorBatch(2);
    const verifier = createReceiptVerifier({ publicClient, finalityDepth: 1 });
    const before = await verifier.verify(receipt!);
    expect(before).toMatchObject({ valid: true, onChain: { canonical: true, final: true } });

    // Replace the anchoring block (the head) with an empty one.
    await publicClient.request({ method: 'anvil_reorg', params: [1, []] } as never);
    const after = await verifier.verify(receipt!);
    const replacement = await publicClient.getBlock({ blockNumber: BigInt(receipt!.blockNumber) });
    expect(replacement.hash).not.toBe(receipt!.blockHash);
    expect(after.valid).toBe(false);
    expect(after.onChain).toMatchObject({
      canonical: false,
      canonicalBlockHash: replacement.hash,
      confirmations: 0,
      final: false,
    });
    expect(after.problems).toContain(
      `block ${receipt!.blockNumber} is not canonical: the chain has ${replacement.hash} there, not the receipt's ${receipt!.blockHash} (a reorg dropped it)`,
    );
    // A fresh verifier (no cached event lookup) agrees.
    const fresh = await verifyReceipt(receipt!, { publicClient });
    expect(fresh.valid).toBe(false);
    expect(fresh.onChain.canonical).toBe(false);
  });

  it('error: an unreachable RPC rejects with VerificationError', async () => {
    const port = await getFreePort();
    const error = await verifyReceipt(receipts[0]!, { rpcUrl: `http://127.0.0.1:${port}` }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(VerificationError);
  });
});
