import type { Account, Address, Chain, Hash, PublicClient, Transport, WalletClient } from 'viem';
import { streamAnchorAbi, streamAnchorBytecode } from './generated/streamAnchor';

export { streamAnchorAbi, streamAnchorBytecode };

/** keccak256("WRITER_ROLE"), the role allowed to call `anchorBatch`. */
export const WRITER_ROLE =
  '0x2b8f168f361ac1393a163ed4adfa899a87be7b7c71645167bdaddd822ae453c8' as const;

/** A wallet client with an account and chain bound, as deploy/grant need to sign. */
export type SigningWalletClient = WalletClient<Transport, Chain, Account>;

export interface DeployStreamAnchorParams {
  walletClient: SigningWalletClient;
  publicClient: PublicClient;
  /** Receives DEFAULT_ADMIN_ROLE and WRITER_ROLE; defaults to the wallet's account. */
  admin?: Address;
  /** Confirmations to wait for (default 1). */
  confirmations?: number;
}

export interface DeployStreamAnchorResult {
  address: Address;
  blockNumber: bigint;
  txHash: Hash;
}

/** Deploys StreamAnchor and waits for the receipt. */
export async function deployStreamAnchor({
  walletClient,
  publicClient,
  admin,
  confirmations = 1,
}: DeployStreamAnchorParams): Promise<DeployStreamAnchorResult> {
  const txHash = await walletClient.deployContract({
    abi: streamAnchorAbi,
    bytecode: streamAnchorBytecode,
    args: [admin ?? walletClient.account.address],
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash: txHash, confirmations });
  if (receipt.status !== 'success' || !receipt.contractAddress) {
    throw new Error(`StreamAnchor deployment ${txHash} failed (status ${receipt.status})`);
  }
  return { address: receipt.contractAddress, blockNumber: receipt.blockNumber, txHash };
}

export interface GrantWriterParams {
  walletClient: SigningWalletClient;
  publicClient: PublicClient;
  /** The StreamAnchor contract. */
  address: Address;
  /** Account to receive WRITER_ROLE. The wallet's account must hold DEFAULT_ADMIN_ROLE. */
  writer: Address;
  confirmations?: number;
}

/** Grants WRITER_ROLE to `writer` and waits for the receipt. Granting an existing writer is a no-op on-chain. */
export async function grantWriter({
  walletClient,
  publicClient,
  address,
  writer,
  confirmations = 1,
}: GrantWriterParams): Promise<{ txHash: Hash; blockNumber: bigint }> {
  const { request } = await publicClient.simulateContract({
    account: walletClient.account,
    address,
    abi: streamAnchorAbi,
    functionName: 'grantRole',
    args: [WRITER_ROLE, writer],
  });
  const txHash = await walletClient.writeContract(request);
  const receipt = await publicClient.waitForTransactionReceipt({ hash: txHash, confirmations });
  if (receipt.status !== 'success') throw new Error(`grantRole ${txHash} reverted`);
  return { txHash, blockNumber: receipt.blockNumber };
}
