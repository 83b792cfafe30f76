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

export type WriterPublicClient = PublicClient<Transport, Chain>;
export type WriterWalletClient = WalletClient<Transport, Chain, Account>;

export interface ChainClientsConfig {
  RPC_URL: string;
  CHAIN_ID: number;
  WRITER_PRIVATE_KEY: `0x${string}`;
}

/** A minimal chain definition for any EVM chain id (no explorer, ETH-like currency). */
export function writerChain(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: `chain-${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

/**
 * viem clients over HTTP only (no WebSocket). `cacheTime: 0`: the submitter's reads of the
 * block number and nonces must never come from a cache. The wallet client signs locally.
 */
export function createChainClients(config: ChainClientsConfig): {
  publicClient: WriterPublicClient;
  walletClient: WriterWalletClient;
} {
  const chain = writerChain(config.CHAIN_ID, config.RPC_URL);
  const transport = http(config.RPC_URL, { retryCount: 2, timeout: 15_000 });
  const account = privateKeyToAccount(config.WRITER_PRIVATE_KEY);
  return {
    publicClient: createPublicClient({ chain, transport, cacheTime: 0, pollingInterval: 500 }),
    walletClient: createWalletClient({ chain, transport, account, cacheTime: 0 }),
  };
}
