import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { BaseError } from '@streamanchor/service-kit';
import { paths } from './paths';

/** A build step failed; `details` holds the tail of its output. */
export class BuildError extends BaseError<string> {
  override name = 'BuildError';
  constructor(shortMessage: string, details: string) {
    super(shortMessage, { details, message: `${shortMessage}\n${details}` });
  }
}

/** Newest modification time (ms) of any file under the given paths; 0 when none exist. */
export function newestMtime(targets: readonly string[]): number {
  let newest = 0;
  const visit = (path: string) => {
    if (!existsSync(path)) return;
    const stat = statSync(path);
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path)) {
        if (entry === 'node_modules' || entry === 'generated') continue;
        visit(join(path, entry));
      }
    } else if (stat.mtimeMs > newest) newest = stat.mtimeMs;
  };
  for (const target of targets) visit(target);
  return newest;
}

/**
 * Runs a package.json script the way `pnpm run` does (sh, the package's and the root's
 * node_modules/.bin on PATH), without needing pnpm itself on PATH.
 */
export async function runPackageScript(packageDir: string, script: string): Promise<string> {
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>;
  };
  const command = manifest.scripts?.[script];
  if (!command) throw new BuildError(`${packageDir}: no "${script}" script`, '');
  const env = {
    ...process.env,
    PATH: [
      join(packageDir, 'node_modules', '.bin'),
      join(paths.root, 'node_modules', '.bin'),
      process.env.PATH ?? '',
    ].join(delimiter),
  };
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {
      cwd: packageDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error) => reject(new BuildError(`${command}: ${error.message}`, output)));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(output);
      else
        reject(
          new BuildError(
            `\`${command}\` in ${packageDir} failed (${signal ?? `exit ${code}`})`,
            output.split('\n').slice(-40).join('\n'),
          ),
        );
    });
  });
}

const contractInputs = () => [
  join(paths.contracts, 'src'),
  join(paths.contracts, 'scripts'),
  join(paths.contracts, 'foundry.toml'),
];

// The contracts build leaves its output untouched when nothing changed, so a stamp records
// when it last succeeded (kept with other caches, out of every tracked folder).
const contractsStamp = join(
  paths.root,
  'node_modules',
  '.cache',
  'streamanchor',
  'contracts-build.stamp',
);

/** True when contracts/src/generated is missing or older than the Solidity sources. */
export function contractsBuildNeeded(): boolean {
  if (!existsSync(paths.contractsGenerated)) return true;
  const generated = newestMtime([paths.contractsGenerated]);
  if (generated === 0) return true;
  const built = Math.max(
    generated,
    existsSync(contractsStamp) ? statSync(contractsStamp).mtimeMs : 0,
  );
  return newestMtime(contractInputs()) > built;
}

/** Generates the typed ABI (`pnpm --filter @streamanchor/contracts build`) when missing or stale. */
export async function ensureContractsBuilt({ force = false } = {}): Promise<boolean> {
  if (!force && !contractsBuildNeeded()) return false;
  await runPackageScript(paths.contracts, 'build');
  mkdirSync(dirname(contractsStamp), { recursive: true });
  writeFileSync(contractsStamp, `${new Date().toISOString()}\n`);
  return true;
}

const webInputs = () => [
  join(paths.web, 'src'),
  join(paths.web, 'index.html'),
  join(paths.web, 'vite.config.ts'),
  join(paths.web, 'package.json'),
  join(paths.root, 'packages', 'client', 'src'),
  join(paths.root, 'packages', 'protocol', 'src'),
];

/** True when apps/web/dist is missing or older than its sources. */
export function webBuildNeeded(): boolean {
  const index = join(paths.webDist, 'index.html');
  if (!existsSync(index)) return true;
  return newestMtime(webInputs()) > statSync(index).mtimeMs;
}

/** Builds the demo page (`vite build` in apps/web) when missing or stale. */
export async function ensureWebBuilt({ force = false } = {}): Promise<boolean> {
  if (!force && !webBuildNeeded()) return false;
  await runPackageScript(paths.web, 'build');
  return true;
}
