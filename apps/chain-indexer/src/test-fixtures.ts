// Test fixtures for the chain-indexer's tests (not part of the service).
import { randomBytes } from 'node:crypto';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { streamAnchorAbi } from '@streamanchor/contracts';
import type { Database } from '@streamanchor/db';
import { contentHashOf, LEAF_ENCODING, leafValue } from '@streamanchor/protocol';
import { ANVIL_CHAIN_ID, ANVIL_TEST_PRIVATE_KEY } from '@streamanchor/testing';
import type { Kysely } from 'kysely';
import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { Config } from './config';

export const randomHex32 = () => `0x${randomBytes(32).toString('hex')}` as `0x${string}`;
/** A session id as relays make them: 22 characters of base64url. */
export const randomSessionId = () => randomBytes(16).toString('base64url');

export function anvilChain(rpcUrl: string): Chain {
  return defineChain({
    id: ANVIL_CHAIN_ID,
    name: 'anvil',
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

export interface ChainClients {
  publicClient: PublicClient;
  walletClient: WalletClient<Transport, Chain, Account>;
}

export function chainClients(rpcUrl: string): ChainClients {
  const chain = anvilChain(rpcUrl);
  // retryCount 0: anvil is local, and a failure should surface at once.
  const transport = http(rpcUrl, { retryCount: 0 });
  return {
    publicClient: createPublicClient({ chain, transport }) as PublicClient,
    walletClient: createWalletClient({
      chain,
      transport,
      account: privateKeyToAccount(ANVIL_TEST_PRIVATE_KEY),
    }),
  };
}

export function testConfig(
  overrides: Partial<Config> & Pick<Config, 'rpcUrl' | 'contract' | 'deploymentBlock'>,
): Config {
  return {
    chainId: ANVIL_CHAIN_ID,
    contractAddress: overrides.contract,
    pollIntervalMs: 20,
    confirmations: 0,
    finalityDepth: 3,
    maxLogRange: 2000,
    receiptsPerJob: 1000,
    receiptCacheRecords: 50_000,
    leaseMs: 5000,
    databaseUrl: undefined,
    dataDir: '.data',
    logLevel: 'silent',
    redisUrl: 'redis://127.0.0.1:6379',
    redisPrefix: 'unused',
    ...overrides,
  };
}

export interface SeededRecord {
  recordId: `0x${string}`;
  topic: string;
  subject: string;
  contentHash: `0x${string}`;
  acceptedAt: number;
  relayId: string;
  sessionId: string;
}

export interface SeededBatch {
  batchId: `0x${string}`;
  merkleRoot: `0x${string}`;
  recordCount: number;
  records: SeededRecord[];
}

/**
 * Writes what the chain-writer would have: records, a batch with its Merkle tree
 * (StandardMerkleTree over leafValue, LEAF_ENCODING), its leaves (per-record leaf index and
 * leaf hash; proofs are derived when read), status 'sent'.
 */
export async function seedBatch(
  db: Kysely<Database>,
  {
    contract,
    sessions,
  }: { contract: string; sessions: { relayId: string; sessionId: string; records: number }[] },
): Promise<SeededBatch> {
  const records: SeededRecord[] = [];
  let n = 0;
  for (const session of sessions) {
    for (let i = 0; i < session.records; i++) {
      const payload = JSON.stringify({ n: n++ });
      records.push({
        recordId: randomHex32(),
        topic: 'test.topic',
        subject: `user-${session.sessionId.slice(0, 4)}`,
        contentHash: contentHashOf(payload),
        acceptedAt: 1_700_000_000_000 + n,
        relayId: session.relayId,
        sessionId: session.sessionId,
      });
    }
  }
  const tree = StandardMerkleTree.of(records.map(leafValue), [...LEAF_ENCODING]);
  const batchId = randomHex32();
  const merkleRoot = tree.root as `0x${string}`;
  const { seq: batchSeq } = await db
    .insertInto('batches')
    .values({
      batch_id: batchId,
      status: 'sent',
      merkle_root: merkleRoot,
      record_count: records.length,
      chain_id: ANVIL_CHAIN_ID,
      contract,
      sent_at: new Date(),
    })
    .returning('seq')
    .executeTakeFirstOrThrow();
  const stored = await db
    .insertInto('records')
    .values(
      records.map((record, index) => ({
        record_id: record.recordId,
        topic: record.topic,
        subject: record.subject,
        content_hash: record.contentHash,
        accepted_at: record.acceptedAt,
        payload: '{}',
        relay_id: record.relayId,
        session_id: record.sessionId,
        // The topic's positions, as the relay's fan-out gives them (one topic here).
        position: index + 1,
      })),
    )
    .returning('seq')
    .execute();
  // Its leaves, as the ledger's createBatch writes them (one row per record, in leaf order).
  await db
    .insertInto('batch_leaves')
    .values(
      records.map((record, index) => ({
        batch_seq: String(batchSeq),
        leaf_index: index,
        record_seq: String(stored[index]!.seq),
        leaf_hash: tree.leafHash(leafValue(record)),
      })),
    )
    .execute();
  return { batchId, merkleRoot, recordCount: records.length, records };
}

export interface Anchored {
  txHash: `0x${string}`;
  blockNumber: bigint;
  blockHash: `0x${string}`;
  logIndex: number;
}

/** Calls anchorBatch on the contract (automine) and waits for the receipt. */
export async function anchorOnChain(
  { publicClient, walletClient }: ChainClients,
  address: `0x${string}`,
  batch: { batchId: `0x${string}`; merkleRoot: `0x${string}`; recordCount: number },
): Promise<Anchored> {
  const txHash = await walletClient.writeContract({
    address,
    abi: streamAnchorAbi,
    functionName: 'anchorBatch',
    args: [batch.batchId, batch.merkleRoot, batch.recordCount],
  });
  const receipt = await publicClient.waitForTransactionReceipt({
    hash: txHash,
    pollingInterval: 20,
  });
  if (receipt.status !== 'success') throw new Error(`anchorBatch ${txHash} reverted`);
  const log = receipt.logs.find((entry) => entry.address.toLowerCase() === address.toLowerCase());
  if (!log || log.logIndex === null) throw new Error('no BatchAnchored log');
  return {
    txHash,
    blockNumber: receipt.blockNumber,
    blockHash: receipt.blockHash,
    logIndex: log.logIndex,
  };
}

/** Mines `blocks` empty blocks on anvil. */
export async function mine(publicClient: PublicClient, blocks: number): Promise<void> {
  await publicClient.request({
    method: 'anvil_mine' as never,
    params: [`0x${blocks.toString(16)}`] as never,
  });
}
