import { streamAnchorAbi } from '@streamanchor/contracts';
import type { Address } from 'viem';
import { ChainIdMismatchError, ContractNotFoundError, MissingWriterRoleError } from '../errors';
import type { WriterPublicClient } from './clients';

/**
 * Fails fast before anything is signed: the RPC serves CHAIN_ID, the contract exists there,
 * and the signer may anchor.
 */
export async function verifyChain({
  publicClient,
  chainId,
  contract,
  signer,
  rpcUrl,
}: {
  publicClient: WriterPublicClient;
  chainId: number;
  contract: Address;
  signer: Address;
  rpcUrl: string;
}): Promise<void> {
  const actual = await publicClient.getChainId();
  if (actual !== chainId) throw new ChainIdMismatchError(chainId, actual, rpcOrigin(rpcUrl));
  const code = await publicClient.getCode({ address: contract });
  if (!code || code === '0x') throw new ContractNotFoundError(contract, chainId);
  const role = await publicClient.readContract({
    address: contract,
    abi: streamAnchorAbi,
    functionName: 'WRITER_ROLE',
  });
  const hasRole = await publicClient.readContract({
    address: contract,
    abi: streamAnchorAbi,
    functionName: 'hasRole',
    args: [role, signer],
  });
  if (!hasRole) throw new MissingWriterRoleError(signer, contract);
}

/** The RPC URL without path, query or credentials (API keys often sit in the path). */
export function rpcOrigin(rpcUrl: string): string {
  try {
    return new URL(rpcUrl).origin;
  } catch {
    return '(unparseable url)';
  }
}
