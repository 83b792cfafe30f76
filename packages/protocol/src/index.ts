export * from './constants';
export * from './primitives';
export * from './record';
export * from './receipt';
export * from './data-channel';
export * from './http';
export * from './queue-payloads';
