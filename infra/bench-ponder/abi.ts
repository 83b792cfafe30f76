import { parseAbi } from 'viem';

/** The one event of StreamAnchor (contracts/src/StreamAnchor.sol) the benchmark indexes. */
export const batchAnchoredAbi = parseAbi([
  'event BatchAnchored(bytes32 indexed batchId, bytes32 indexed merkleRoot, uint32 recordCount, address indexed writer)',
]);
