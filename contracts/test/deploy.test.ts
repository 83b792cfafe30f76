import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  type Hex,
  http,
  keccak256,
  type PublicClient,
  pad,
  parseEventLogs,
  toHex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { foundryBinary } from '../scripts/foundry.mjs';
import { deployStreamAnchor, grantWriter, streamAnchorAbi, WRITER_ROLE } from '../src/index';

// Anvil's well-known default accounts #0 and #1. These are PUBLIC TEST KEYS printed by every
// anvil/hardhat node; they only hold value on local dev chains. Never use them anywhere else.
const ANVIL_PUBLIC_TEST_KEY_0: Hex =
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const ANVIL_PUBLIC_TEST_KEY_1: Hex =
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';

// The record leaf layout (owned by @streamanchor/protocol; repeated here only as test input).
const LEAF_TYPES = ['bytes32', 'string', 'string', 'bytes32', 'uint64'];

const admin = privateKeyToAccount(ANVIL_PUBLIC_TEST_KEY_0);
const other = privateKeyToAccount(ANVIL_PUBLIC_TEST_KEY_1);

let anvil: ChildProcess;
let rpcUrl: string;
let publicClient: PublicClient;

function walletFor(account: typeof admin) {
  return createWalletClient({ account, chain: foundry, transport: http(rpcUrl) });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        address && typeof address === 'object'
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

async function startAnvil(): Promise<void> {
  const port = await freePort();
  rpcUrl = `http://127.0.0.1:${port}`;
  anvil = spawn(
    foundryBinary('anvil'),
    ['--host', '127.0.0.1', '--port', String(port), '--silent'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  anvil.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (anvil.exitCode !== null) throw new Error(`anvil exited with ${anvil.exitCode}: ${stderr}`);
    try {
      const res = await fetch(rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`anvil did not answer on ${rpcUrl} within 15 s: ${stderr}`);
}

async function stopAnvil(): Promise<void> {
  if (!anvil || anvil.exitCode !== null || anvil.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => anvil.kill('SIGKILL'), 5_000);
    anvil.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    anvil.kill('SIGTERM');
  });
}

/** The revert error (name + args) a contract call fails with. */
async function revertOf(
  call: Promise<unknown>,
): Promise<{ errorName?: string; args?: readonly unknown[] }> {
  try {
    await call;
  } catch (err) {
    if (err instanceof BaseError) {
      const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
      if (reverted instanceof ContractFunctionRevertedError) {
        return { errorName: reverted.data?.errorName, args: reverted.data?.args };
      }
    }
    throw err;
  }
  throw new Error('expected the call to revert, but it succeeded');
}

function record(i: number): [Hex, string, string, Hex, bigint] {
  return [
    pad(toHex(1000 + i), { size: 32 }),
    `topic/${i % 3}`,
    `subject-${i}-✓`,
    keccak256(toHex(`payload ${i}`)),
    1_750_000_000_000n + BigInt(i),
  ];
}

beforeAll(async () => {
  await startAnvil();
  publicClient = createPublicClient({ chain: foundry, transport: http(rpcUrl) });
});

afterAll(async () => {
  await stopAnvil();
});

describe('deployStreamAnchor', () => {
  test('default', async () => {
    const walletClient = walletFor(admin);
    const { address, blockNumber, txHash } = await deployStreamAnchor({
      walletClient,
      publicClient,
    });

    expect(address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(blockNumber).toBeGreaterThan(0n);
    const receipt = await publicClient.getTransactionReceipt({ hash: txHash });
    expect(receipt.contractAddress?.toLowerCase()).toBe(address.toLowerCase());
    expect(receipt.blockNumber).toBe(blockNumber);
    expect((await publicClient.getCode({ address }))?.length).toBeGreaterThan(2);

    const read = (functionName: 'WRITER_ROLE' | 'DEFAULT_ADMIN_ROLE') =>
      publicClient.readContract({ address, abi: streamAnchorAbi, functionName });
    expect(await read('WRITER_ROLE')).toBe(WRITER_ROLE);
    const adminRole = await read('DEFAULT_ADMIN_ROLE');
    for (const role of [adminRole, WRITER_ROLE]) {
      expect(
        await publicClient.readContract({
          address,
          abi: streamAnchorAbi,
          functionName: 'hasRole',
          args: [role, admin.address],
        }),
      ).toBe(true);
    }
  });

  test('behavior: admin option gives the roles to another account', async () => {
    const { address } = await deployStreamAnchor({
      walletClient: walletFor(admin),
      publicClient,
      admin: other.address,
    });
    const hasRole = (account: Hex) =>
      publicClient.readContract({
        address,
        abi: streamAnchorAbi,
        functionName: 'hasRole',
        args: [WRITER_ROLE, account],
      });
    expect(await hasRole(other.address)).toBe(true);
    expect(await hasRole(admin.address)).toBe(false);
  });
});

describe('StreamAnchor on anvil', () => {
  test('behavior: anchors a batch and reads the BatchAnchored log back', async () => {
    const walletClient = walletFor(admin);
    const { address } = await deployStreamAnchor({ walletClient, publicClient });
    const batchId = keccak256(toHex('batch-anchor-log'));
    const merkleRoot = keccak256(toHex('some root'));

    const hash = await walletClient.writeContract({
      address,
      abi: streamAnchorAbi,
      functionName: 'anchorBatch',
      args: [batchId, merkleRoot, 7],
    });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    expect(receipt.status).toBe('success');

    const [fromReceipt] = parseEventLogs({
      abi: streamAnchorAbi,
      eventName: 'BatchAnchored',
      logs: receipt.logs,
    });
    expect(fromReceipt?.args).toEqual({
      batchId,
      merkleRoot,
      recordCount: 7,
      writer: admin.address,
    });

    const logs = await publicClient.getContractEvents({
      address,
      abi: streamAnchorAbi,
      eventName: 'BatchAnchored',
      args: { batchId },
      fromBlock: receipt.blockNumber,
      toBlock: receipt.blockNumber,
    });
    expect(logs).toHaveLength(1);
    expect(logs[0]?.args.merkleRoot).toBe(merkleRoot);
    expect(logs[0]?.transactionHash).toBe(hash);

    expect(
      await publicClient.readContract({
        address,
        abi: streamAnchorAbi,
        functionName: 'isAnchored',
        args: [batchId],
      }),
    ).toBe(true);
    const block = await publicClient.getBlock({ blockNumber: receipt.blockNumber });
    expect(
      await publicClient.readContract({
        address,
        abi: streamAnchorAbi,
        functionName: 'getBatch',
        args: [batchId],
      }),
    ).toEqual({
      merkleRoot,
      recordCount: 7,
      anchoredAt: block.timestamp,
      blockNumber: receipt.blockNumber,
    });
  });

  test('behavior: verifies a StandardMerkleTree proof on-chain via verifyRecord', async () => {
    const walletClient = walletFor(admin);
    const { address } = await deployStreamAnchor({ walletClient, publicClient });
    const values = Array.from({ length: 7 }, (_, i) => record(i));
    const tree = StandardMerkleTree.of(values, LEAF_TYPES);
    const batchId = keccak256(toHex('batch-merkle'));

    const hash = await walletClient.writeContract({
      address,
      abi: streamAnchorAbi,
      functionName: 'anchorBatch',
      args: [batchId, tree.root as Hex, values.length],
    });
    await publicClient.waitForTransactionReceipt({ hash });

    for (const [i, value] of tree.entries()) {
      const proof = tree.getProof(i) as Hex[];
      expect(
        await publicClient.readContract({
          address,
          abi: streamAnchorAbi,
          functionName: 'verifyRecord',
          args: [batchId, proof, ...value],
        }),
        `record ${i}`,
      ).toBe(true);
      expect(
        await publicClient.readContract({
          address,
          abi: streamAnchorAbi,
          functionName: 'leafHash',
          args: value,
        }),
      ).toBe(tree.leafHash(value));
    }

    // A tampered record, a proof for another leaf and an unknown batch all fail.
    const [recordId, topic, subject, contentHash, acceptedAt] = values[2]!;
    const proof = tree.getProof(values[2]!) as Hex[];
    const verify = (args: readonly [Hex, readonly Hex[], Hex, string, string, Hex, bigint]) =>
      publicClient.readContract({
        address,
        abi: streamAnchorAbi,
        functionName: 'verifyRecord',
        args,
      });
    expect(
      await verify([batchId, proof, recordId, topic, subject, contentHash, acceptedAt + 1n]),
    ).toBe(false);
    expect(
      await verify([batchId, proof, recordId, `${topic}x`, subject, contentHash, acceptedAt]),
    ).toBe(false);
    expect(
      await verify([
        batchId,
        tree.getProof(3) as Hex[],
        recordId,
        topic,
        subject,
        contentHash,
        acceptedAt,
      ]),
    ).toBe(false);
    expect(
      await verify([
        keccak256(toHex('unknown')),
        proof,
        recordId,
        topic,
        subject,
        contentHash,
        acceptedAt,
      ]),
    ).toBe(false);
  });

  test('behavior: grantWriter lets another account anchor', async () => {
    const walletClient = walletFor(admin);
    const { address } = await deployStreamAnchor({ walletClient, publicClient });
    const { blockNumber } = await grantWriter({
      walletClient,
      publicClient,
      address,
      writer: other.address,
    });
    expect(blockNumber).toBeGreaterThan(0n);

    const hash = await walletFor(other).writeContract({
      address,
      abi: streamAnchorAbi,
      functionName: 'anchorBatch',
      args: [keccak256(toHex('by-other')), keccak256(toHex('root')), 1],
    });
    expect((await publicClient.waitForTransactionReceipt({ hash })).status).toBe('success');
  });

  test('error: anchoring the same batch twice reverts with BatchAlreadyAnchored', async () => {
    const walletClient = walletFor(admin);
    const { address } = await deployStreamAnchor({ walletClient, publicClient });
    const batchId = keccak256(toHex('dup'));
    const hash = await walletClient.writeContract({
      address,
      abi: streamAnchorAbi,
      functionName: 'anchorBatch',
      args: [batchId, keccak256(toHex('r1')), 1],
    });
    await publicClient.waitForTransactionReceipt({ hash });

    const reverted = await revertOf(
      publicClient.simulateContract({
        account: admin,
        address,
        abi: streamAnchorAbi,
        functionName: 'anchorBatch',
        args: [batchId, keccak256(toHex('r2')), 2],
      }),
    );
    expect(reverted).toEqual({ errorName: 'BatchAlreadyAnchored', args: [batchId] });
  });

  test('error: a non-writer gets AccessControlUnauthorizedAccount', async () => {
    const { address } = await deployStreamAnchor({ walletClient: walletFor(admin), publicClient });
    const reverted = await revertOf(
      publicClient.simulateContract({
        account: other,
        address,
        abi: streamAnchorAbi,
        functionName: 'anchorBatch',
        args: [keccak256(toHex('x')), keccak256(toHex('y')), 1],
      }),
    );
    expect(reverted).toEqual({
      errorName: 'AccessControlUnauthorizedAccount',
      args: [other.address, WRITER_ROLE],
    });
  });

  test('error: grantWriter by a non-admin rejects', async () => {
    const { address } = await deployStreamAnchor({ walletClient: walletFor(admin), publicClient });
    await expect(
      grantWriter({ walletClient: walletFor(other), publicClient, address, writer: other.address }),
    ).rejects.toThrow(/AccessControlUnauthorizedAccount/);
  });

  test('error: zero values revert with their custom errors', async () => {
    const { address } = await deployStreamAnchor({ walletClient: walletFor(admin), publicClient });
    const simulate = (args: readonly [Hex, Hex, number]) =>
      publicClient.simulateContract({
        account: admin,
        address,
        abi: streamAnchorAbi,
        functionName: 'anchorBatch',
        args,
      });
    const id = keccak256(toHex('id'));
    const root = keccak256(toHex('root'));
    const zero = pad('0x', { size: 32 });
    expect((await revertOf(simulate([zero, root, 1]))).errorName).toBe('ZeroBatchId');
    expect((await revertOf(simulate([id, zero, 1]))).errorName).toBe('ZeroMerkleRoot');
    expect((await revertOf(simulate([id, root, 0]))).errorName).toBe('EmptyBatch');
  });
});
