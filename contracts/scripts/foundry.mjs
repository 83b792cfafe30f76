#!/usr/bin/env node
// Runs a Foundry tool (forge, cast, anvil, chisel) from the npm @foundry-rs/* packages and
// PROPAGATES ITS EXIT CODE.
//
// Why: the npm wrapper `node_modules/.bin/forge` (@foundry-rs/forge 1.7.1 bin.mjs) spawns the
// platform binary but never forwards the child's exit status, so `node_modules/.bin/forge test`
// exits 0 even when tests fail or `forge snapshot --check` finds a diff. Never gate CI on it.
//
//   node scripts/foundry.mjs forge test
//   node scripts/foundry.mjs forge snapshot --check
//
// Also importable: `foundryBinary('anvil')` returns the platform binary path.
import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TOOLS = ['forge', 'cast', 'anvil', 'chisel'];
const contractsRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Absolute path of the native binary shipped in @foundry-rs/<tool>-<platform>-<arch>.
 * @param {'forge' | 'cast' | 'anvil' | 'chisel'} tool
 * @returns {string}
 */
export function foundryBinary(tool) {
  if (!TOOLS.includes(tool)) throw new Error(`unknown Foundry tool: ${tool}`);
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch];
  if (!arch) throw new Error(`unsupported architecture for Foundry: ${process.arch}`);
  const fromContracts = createRequire(path.join(contractsRoot, 'package.json'));
  const wrapperDir = realpathSync(
    path.dirname(fromContracts.resolve(`@foundry-rs/${tool}/package.json`)),
  );
  const fromWrapper = createRequire(path.join(wrapperDir, 'package.json'));
  const binary = `${tool}${process.platform === 'win32' ? '.exe' : ''}`;
  return fromWrapper.resolve(`@foundry-rs/${tool}-${process.platform}-${arch}/bin/${binary}`);
}

/**
 * Runs a tool in the contracts root and resolves with its exit code.
 * @param {'forge' | 'cast' | 'anvil' | 'chisel'} tool
 * @param {string[]} args
 * @param {{ cwd?: string }} [options]
 * @returns {Promise<number>}
 */
export function runFoundry(tool, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(foundryBinary(tool), args, {
      stdio: 'inherit',
      cwd: options.cwd ?? contractsRoot,
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      resolve(code ?? (signal ? 128 + (signalNumber(signal) ?? 1) : 1)),
    );
  });
}

function signalNumber(signal) {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal];
}

const isMain =
  process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (isMain) {
  const [tool, ...args] = process.argv.slice(2);
  if (!tool || !TOOLS.includes(tool)) {
    process.stderr.write(`usage: foundry.mjs <${TOOLS.join('|')}> [args...]\n`);
    process.exit(2);
  }
  // Let the child receive Ctrl-C itself (same process group); just don't die before it.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => {});
  runFoundry(tool, args, { cwd: process.cwd() }).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`foundry.mjs: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
