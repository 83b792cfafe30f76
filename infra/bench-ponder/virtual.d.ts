// What `ponder start` writes to ponder-env.d.ts (git-ignored, rewritten on every start, in a
// style biome rejects): the types of Ponder's virtual modules for this app, for tsc.
/// <reference types="ponder/virtual" />

declare module 'ponder:internal' {
  const config: typeof import('./ponder.config.ts');
  const schema: typeof import('./ponder.schema.ts');
}

declare module 'ponder:schema' {
  export * from './ponder.schema.ts';
}
