import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is infra/stack/src/paths.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export const SERVICES = [
  'signaling-gateway',
  'rtc-relay',
  'chain-writer',
  'chain-indexer',
] as const;
export type ServiceName = (typeof SERVICES)[number];

export const paths = {
  root: REPO_ROOT,
  app: (name: string) => join(REPO_ROOT, 'apps', name),
  mainOf: (name: ServiceName) => join(REPO_ROOT, 'apps', name, 'src', 'main.ts'),
  chainServices: join(REPO_ROOT, 'infra', 'stack', 'src', 'chain-services.ts'),
  reaper: join(REPO_ROOT, 'infra', 'stack', 'src', 'reaper.ts'),
  contracts: join(REPO_ROOT, 'contracts'),
  contractsGenerated: join(REPO_ROOT, 'contracts', 'src', 'generated'),
  web: join(REPO_ROOT, 'apps', 'web'),
  webDist: join(REPO_ROOT, 'apps', 'web', 'dist'),
} as const;
