import { deployStreamAnchor, streamAnchorAbi } from '@streamanchor/contracts';
import { migrateToLatest, openDatabase } from '@streamanchor/db';
import {
  ANVIL_TEST_PRIVATE_KEY,
  type Anvil,
  createThrowawayPostgres,
  startAnvil,
  type ThrowawayPostgres,
} from '@streamanchor/testing';
import pg from 'pg';
import {
  type Address,
  createPublicClient,
  createWalletClient,
  type Hex,
  http,
  type PublicClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants } from '../src/invariants';

// The checker itself, on a hand-made state: it passes a consistent one and names each broken
// invariant of a broken one (so a green fault scenario means something).
describe('checkInvariants', () => {
  let anvil: Anvil;
  let postgres: ThrowawayPostgres;
  let pool: pg.Pool;
  let client: PublicClient;
  let contract: Address;
  let deploymentBlock: bigint;
  const batchId = `0x${'ab'.repeat(32)}` as Hex;
  const root = `0x${'cd'.repeat(32)}` as Hex;
  const recordId = `0x${'01'.repeat(32)}`;

  beforeAll(async () => {
    anvil = await startAnvil();
    postgres = await createThrowawayPostgres('faults_inv');
    const handle = await openDatabase({
      databaseUrl: postgres.url,
      pgliteDir: 'unused',
      poolSize: 1,
    });
    await migrateToLatest(handle.db);
    await handle.close();
    pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
    const chain = { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } };
    client = createPublicClient({ chain, transport: http(anvil.rpcUrl) }) as PublicClient;
    const wallet = createWalletClient({
      account: privateKeyToAccount(ANVIL_TEST_PRIVATE_KEY),
      chain,
      transport: http(anvil.rpcUrl),
    });
    const deployment = await deployStreamAnchor({ walletClient: wallet, publicClient: client });
    contract = deployment.address;
    deploymentBlock = deployment.blockNumber;
    await client.request({ method: 'anvil_mine' as never, params: [3] as never });
    const tx = await wallet.writeContract({
      address: contract,
      abi: streamAnchorAbi,
      functionName: 'anchorBatch',
      args: [batchId, root, 1],
    });
    await client.waitForTransactionReceipt({ hash: tx });
  });
  afterAll(async () => {
    await pool?.end();
    await postgres?.drop();
    await anvil?.stop();
  });

  const check = (acked: string[]) =>
    checkInvariants({ pool, client, chainId: 31337, contract, deploymentBlock, acked });

  it('behavior: a consistent state is settled; a reorg and a lost record are each named', async () => {
    const [log] = await client.getContractEvents({
      address: contract,
      abi: streamAnchorAbi,
      eventName: 'BatchAnchored',
      fromBlock: deploymentBlock,
    });
    expect(log).toBeDefined();
    const at = [
      log!.blockNumber.toString(),
      log!.blockHash,
      log!.logIndex,
      log!.transactionHash,
    ] as const;
    const c = contract.toLowerCase();
    await pool.query(
      `insert into batches (batch_id, status, merkle_root, record_count, chain_id, contract, tx_hash, block_number, block_hash, log_index)
       values ($1, 'final', $2, 1, 31337, $3, $4, $5, $6, $7)`,
      [batchId, root, c, at[3], at[0], at[1], at[2]],
    );
    await pool.query(
      `insert into records (record_id, topic, subject, content_hash, accepted_at, payload, relay_id, session_id)
       values ($1, 'demo', 'demo', $2, 1, '{}', 'relay', 'session')`,
      [recordId, root],
    );
    // Its leaf (a one-leaf tree: the root is the leaf hash).
    await pool.query(
      `insert into batch_leaves (batch_seq, leaf_index, record_seq, leaf_hash)
       select b.seq, 0, r.seq, $3 from batches b, records r where b.batch_id = $1 and r.record_id = $2`,
      [batchId, recordId, root],
    );
    await pool.query(
      `insert into anchor_events (chain_id, contract, block_number, block_hash, tx_hash, log_index, batch_id, merkle_root, record_count, writer)
       values (31337, $1, $2, $3, $4, $5, $6, $7, 1, '0x')`,
      [c, at[0], at[1], at[3], at[2], batchId, root],
    );
    await pool.query(
      `insert into receipt_notices (batch_id, revision, status, tx_hash, block_number, block_hash, log_index, confirmations)
       values ($1, 1, 'final', $2, $3, $4, $5, 5)`,
      [batchId, at[3], at[0], at[1], at[2]],
    );
    await pool.query(
      `insert into indexer_cursors (chain_id, contract, block_number, block_hash) values (31337, $1, $2, $3)`,
      [c, at[0], at[1]],
    );

    const good = await check([recordId]);
    expect(good.violations).toEqual([]);
    expect(good.pending).toEqual([]);
    expect(good.settled).toBe(true);
    expect(good.counts).toMatchObject({
      acked: 1,
      stored: 1,
      batches: 1,
      batchesFinal: 1,
      chainLogs: 1,
      anchorEvents: 1,
      noticesFinal: 1,
    });

    // An acked record that was never stored.
    const lost = await check([recordId, `0x${'02'.repeat(32)}`]);
    expect(lost.violations).toEqual([expect.stringMatching(/^1\. 1 acked records not in records/)]);

    // The anchoring block leaves the chain (its tx dropped): the stored event is orphaned,
    // the final notice names a dead block, the batch is no longer anchored.
    const head = await client.getBlockNumber({ cacheTime: 0 });
    await client.request({
      method: 'anvil_reorg' as never,
      params: [Number(head - log!.blockNumber) + 1, []] as never,
    });
    const reorged = await check([recordId]);
    expect(reorged.settled).toBe(false);
    expect(reorged.violations).toEqual([
      expect.stringMatching(/^3\. 1 anchor_events not on the canonical chain \(orphaned\)/),
      expect.stringMatching(/^4\. 1 final receipt notices name a non-canonical block/),
    ]);
    expect(reorged.pending).toEqual([
      expect.stringMatching(/batches of acked records not anchored on the canonical chain/),
    ]);
  });
});
