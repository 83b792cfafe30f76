/**
 * The StreamAnchor contract's `BatchAnchored` event as a viem/abitype ABI item, so
 * that browser clients can read anchors without depending on the contracts package.
 * A test keeps it identical to the item in `streamAnchorAbi` (@streamanchor/contracts).
 */
export const batchAnchoredEvent = {
  type: 'event',
  name: 'BatchAnchored',
  inputs: [
    { name: 'batchId', type: 'bytes32', indexed: true, internalType: 'bytes32' },
    { name: 'merkleRoot', type: 'bytes32', indexed: true, internalType: 'bytes32' },
    { name: 'recordCount', type: 'uint32', indexed: false, internalType: 'uint32' },
    { name: 'writer', type: 'address', indexed: true, internalType: 'address' },
  ],
  anonymous: false,
} as const;
