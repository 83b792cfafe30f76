/**
 * One-shot deployment of StreamAnchor (docker-compose's `deploy` service; also usable by
 * hand: `tsx infra/stack/src/deploy.ts`). Idempotent: when the expected address already
 * holds code, it only checks it and exits 0.
 *
 *   RPC_URL                    HTTP JSON-RPC of the chain
 *   CHAIN_ID                   expected chain id
 *   DEPLOYER_PRIVATE_KEY       deploys; becomes admin and writer
 *   EXPECTED_CONTRACT_ADDRESS  optional: where the services expect the contract (the
 *                              address a fresh deployer's first transaction creates)
 *   WRITER_ADDRESS             optional: another account to grant WRITER_ROLE
 */
import { Type } from '@sinclair/typebox';
import { deployStreamAnchor, grantWriter } from '@streamanchor/contracts';
import { ConfigError, parseEnv } from '@streamanchor/service-kit';
import {
  type Address,
  createPublicClient,
  createWalletClient,
  defineChain,
  getAddress,
  type Hex,
  http,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const Schema = Type.Object({
  RPC_URL: Type.String({ pattern: '^https?://', description: 'HTTP JSON-RPC URL of the chain' }),
  CHAIN_ID: Type.Integer({ minimum: 1, description: 'expected chain id' }),
  DEPLOYER_PRIVATE_KEY: Type.String({
    pattern: '^0x[0-9a-fA-F]{64}$',
    description: 'deployer key (0x + 64 hex)',
  }),
  EXPECTED_CONTRACT_ADDRESS: Type.Optional(
    Type.String({
      pattern: '^0x[0-9a-fA-F]{40}$',
      description: 'address the services are configured with',
    }),
  ),
  WRITER_ADDRESS: Type.Optional(
    Type.String({
      pattern: '^0x[0-9a-fA-F]{40}$',
      description: 'extra account to grant WRITER_ROLE',
    }),
  ),
});

async function main(): Promise<void> {
  const env = parseEnv('deploy', Schema, process.env);
  const chain = defineChain({
    id: env.CHAIN_ID,
    name: `chain-${env.CHAIN_ID}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [env.RPC_URL] } },
  });
  const account = privateKeyToAccount(env.DEPLOYER_PRIVATE_KEY as Hex);
  const publicClient = createPublicClient({
    chain,
    transport: http(env.RPC_URL, { retryCount: 10 }),
  });
  const walletClient = createWalletClient({ account, chain, transport: http(env.RPC_URL) });
  const actual = await publicClient.getChainId();
  if (actual !== env.CHAIN_ID)
    throw new Error(`CHAIN_ID: the RPC reports chain ${actual}, expected ${env.CHAIN_ID}`);

  const expected = env.EXPECTED_CONTRACT_ADDRESS
    ? getAddress(env.EXPECTED_CONTRACT_ADDRESS)
    : undefined;
  let address: Address;
  if (expected && ((await publicClient.getCode({ address: expected })) ?? '0x') !== '0x') {
    address = expected;
    console.log(`StreamAnchor already deployed at ${address}`);
  } else {
    const deployment = await deployStreamAnchor({ walletClient, publicClient });
    address = deployment.address;
    console.log(
      `StreamAnchor deployed at ${address} in block ${deployment.blockNumber} (tx ${deployment.txHash})`,
    );
    if (expected && getAddress(address) !== expected) {
      throw new Error(
        `EXPECTED_CONTRACT_ADDRESS: deployed at ${address}, but the services expect ${expected}; ` +
          'the deployer had sent transactions before (use a fresh chain, or set CONTRACT_ADDRESS to the new address)',
      );
    }
  }
  if (env.WRITER_ADDRESS) {
    await grantWriter({
      walletClient,
      publicClient,
      address,
      writer: env.WRITER_ADDRESS as Address,
    });
    console.log(`WRITER_ROLE granted to ${env.WRITER_ADDRESS}`);
  }
}

main().catch((error: unknown) => {
  console.error(
    error instanceof ConfigError ? error.message : `deploy failed: ${(error as Error).message}`,
  );
  process.exit(1);
});
