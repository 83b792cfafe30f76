export * from './abi';
export * from './constants';
export * from './data-channel';
export * from './http';
export * from './primitives';
export * from './queue-payloads';
export * from './receipt';
export * from './record';
