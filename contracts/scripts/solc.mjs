#!/usr/bin/env node
// solc shim for Foundry: forge cannot download native solc here (no internet), so
// foundry.toml points `solc` at this file, which runs the npm solc-js compiler.
//
// Implements just the CLI surface forge uses:
//   solc --version
//   solc [--base-path P] [--include-path P]... [--allow-paths P1,P2] --standard-json  (input on stdin)
// Import resolution: solc-js has no file system access, so the `import` callback
// resolves source unit names against the base path, include paths and allow paths,
// in that order, and refuses files outside them.
// Debugging: SOLC_SHIM_DEBUG=/tmp/solc-shim.log appends each invocation's cwd and argv there
// (forge captures the compiler's stderr, so a file is the way to see them).
import { appendFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const solc = require('solc');

const argv = process.argv.slice(2);

if (process.env.SOLC_SHIM_DEBUG) {
  appendFileSync(
    process.env.SOLC_SHIM_DEBUG,
    `[solc.mjs] cwd=${process.cwd()} argv=${JSON.stringify(argv)}\n`,
  );
}

function fail(message) {
  process.stderr.write(`solc.mjs: ${message}\n`);
  process.exit(1);
}

if (argv.includes('--version') || argv.includes('-v')) {
  // solc-js reports e.g. "0.8.30+commit.73712a01.Emscripten.clang"; forge parses the
  // semver from the last line, like native solc's "Version: 0.8.30+commit.73712a01.Linux.g++".
  const m = /^(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?\+commit\.[0-9a-f]+)/.exec(solc.version());
  if (!m) fail(`unexpected solc-js version string: ${solc.version()}`);
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${m[1]}\n`);
  process.exit(0);
}

let basePath = process.cwd();
const includePaths = [];
const allowPaths = [];
let standardJson = false;

for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  const takeValue = () => {
    const eq = arg.indexOf('=');
    if (eq !== -1) return arg.slice(eq + 1);
    const v = argv[++i];
    if (v === undefined) fail(`missing value for ${arg}`);
    return v;
  };
  if (arg === '--standard-json') standardJson = true;
  else if (arg === '--base-path' || arg.startsWith('--base-path=')) basePath = takeValue();
  else if (arg === '--include-path' || arg.startsWith('--include-path='))
    includePaths.push(takeValue());
  else if (arg === '--allow-paths' || arg.startsWith('--allow-paths='))
    allowPaths.push(...takeValue().split(',').filter(Boolean));
  // Other flags (e.g. --no-import-callback never comes from forge) are ignored on purpose.
}

if (!standardJson) fail('only --version and --standard-json are supported');

const roots = [basePath, ...includePaths].map((p) => path.resolve(p));
const allowed = [...roots, ...allowPaths.map((p) => path.resolve(p))];

function isInside(file, dir) {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function findImports(sourceUnitName) {
  const candidates = path.isAbsolute(sourceUnitName)
    ? [sourceUnitName]
    : [...roots, ...allowPaths.map((p) => path.resolve(p))].map((r) =>
        path.join(r, sourceUnitName),
      );
  for (const file of candidates) {
    if (!allowed.some((dir) => isInside(path.resolve(file), dir))) continue;
    try {
      return { contents: readFileSync(file, 'utf8') };
    } catch {
      // try the next root
    }
  }
  return { error: `File not found: ${sourceUnitName} (searched ${roots.join(', ')})` };
}

const input = readFileSync(0, 'utf8');
const output = solc.compile(input, { import: findImports });
process.stdout.write(output);
