export {
  type ChainClientsConfig,
  createChainClients,
  type WriterPublicClient,
  type WriterWalletClient,
  writerChain,
} from './clients';
export { verifyChain } from './verify';
