/**
 * The fix for libjuice#355, applied to node-datachannel's prebuilt binary at install.
 *
 * Chromium sends its ICE connectivity checks over a TURN/TCP or TURN/TLS allocation with a
 * tiebreaker of 0, which RFC 8445 §16.1 allows. libjuice (node-datachannel's ICE agent)
 * stores an absent ICE-CONTROLLING/ICE-CONTROLLED as 0 too, so it takes such a check for one
 * that carries neither attribute and answers `400 Bad Request`: a browser that can reach the
 * relay only through TURN over TCP or TLS never connects. Upstream's fix
 * (paullouisageneau/libjuice#356) is not released; node-datachannel 0.33.4 links libjuice
 * statically, so the fix is applied to its binary.
 *
 * The two edits turn the two branches that answer 400 in `agent_process_stun_binding` into
 * no-ops, as the fixed libjuice behaves for a zero tiebreaker:
 * - `if (msg->ice_controlling == msg->ice_controlled) → 400` ("Controlling and controlled
 *   attributes mismatch in request");
 * - `if (msg->use_candidate && !msg->ice_controlling) → 400` ("STUN message use_candidate
 *   missing ice_controlling attribute").
 * A check must still pass MESSAGE-INTEGRITY (the session's ICE password) before it gets
 * there, so only the peer holding the session's credentials is affected. The relay is
 * always the controlled agent (the client offers), so a check with USE-CANDIDATE comes from
 * the controlling peer. The one behavior change beyond the fix: a check that carries neither
 * attribute is answered like one that says controlling, as libjuice did before 1.0.
 *
 * Each edit names the bytes it expects: a binary whose hash or bytes differ is left alone
 * and reported, never patched blindly.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface BinaryEdit {
  /** File offset (equal to the virtual address in this binary's executable segment). */
  offset: number;
  before: string;
  after: string;
  /** What the bytes are, checked against `objdump -d --disassemble=agent_process_stun_binding`. */
  what: string;
}

export interface BinaryPatch {
  /** The optional-dependency package node-datachannel loads its binary from. */
  packageName: string;
  version: string;
  sha256Before: string;
  sha256After: string;
  edits: readonly BinaryEdit[];
}

/** `nopw 0x0(%rax,%rax,1)`: a 6-byte no-op, the length of the `je rel32` it replaces. */
const NOP6 = '660f1f440000';

export const LIBJUICE_ZERO_TIEBREAKER_PATCHES: readonly BinaryPatch[] = [
  {
    packageName: '@node-datachannel/linux-x64-gnu',
    version: '0.33.4',
    sha256Before: '936d991f99cc07a48a8327199ca5ba098411f8b873dfe1a456069f09d64c52ff',
    sha256After: 'e92561dcd06cbcf16eedadc58d2c603b0ac055299aa37a6b4b84d410750ea6dd',
    edits: [
      {
        offset: 0x48bf28,
        before: '0f8471060000',
        after: NOP6,
        what: 'je → 400 when ice_controlling == ice_controlled',
      },
      {
        offset: 0x48bf53,
        before: '0f8492010000',
        after: NOP6,
        what: 'je → 400 when use_candidate && ice_controlling == 0',
      },
    ],
  },
];

export type PatchStatus =
  /** The binary this process loads has the fix. */
  | 'applied'
  /** A known binary without the fix: `applyLibjuicePatch` can apply it. */
  | 'unpatched'
  /** No patch is known for this platform or build (TURN/TCP from Chromium may fail). */
  | 'unknown-build'
  /** node-datachannel is not installed here (an install of another service only). */
  | 'not-installed';

export interface PatchInspection {
  status: PatchStatus;
  /** Path of node-datachannel's native binary, when it was found. */
  path?: string;
  packageName?: string;
  sha256?: string;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function applyEdits(bytes: Buffer, patch: BinaryPatch): Buffer {
  const out = Buffer.from(bytes);
  for (const edit of patch.edits) {
    const found = out.subarray(edit.offset, edit.offset + edit.before.length / 2).toString('hex');
    if (found !== edit.before)
      throw new Error(
        `${patch.packageName}: expected ${edit.before} at 0x${edit.offset.toString(16)}, found ${found}`,
      );
    Buffer.from(edit.after, 'hex').copy(out, edit.offset);
  }
  return out;
}

export type NativeBinary =
  | { path: string; packageName: string; version: string }
  /** node-datachannel is installed, but none of the packages a patch is known for. */
  | 'unknown'
  /** node-datachannel is not installed. */
  | 'absent';

/** The binary node-datachannel loads here (when a patch is known for its package). */
export function locateNativeBinary(fromUrl: string = import.meta.url): NativeBinary {
  let fromBindings: NodeJS.Require;
  try {
    fromBindings = createRequire(createRequire(fromUrl).resolve('node-datachannel'));
  } catch {
    return 'absent';
  }
  for (const patch of LIBJUICE_ZERO_TIEBREAKER_PATCHES) {
    try {
      const manifest = fromBindings.resolve(`${patch.packageName}/package.json`);
      const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
      return {
        path: fromBindings.resolve(patch.packageName),
        packageName: patch.packageName,
        version,
      };
    } catch {}
  }
  return 'unknown';
}

/** Whether the native binary at hand has the fix, without changing anything. */
export function inspectLibjuicePatch(binary = locateNativeBinary()): PatchInspection {
  if (binary === 'absent') return { status: 'not-installed' };
  if (binary === 'unknown') return { status: 'unknown-build' };
  const hash = sha256(readFileSync(binary.path));
  const base = { path: binary.path, packageName: binary.packageName, sha256: hash };
  for (const patch of LIBJUICE_ZERO_TIEBREAKER_PATCHES) {
    if (hash === patch.sha256After) return { ...base, status: 'applied' };
    if (hash === patch.sha256Before) return { ...base, status: 'unpatched' };
  }
  return { ...base, status: 'unknown-build' };
}

/**
 * Applies the fix when the binary is a known unpatched build; idempotent. Writes a new file
 * and renames it over the old one: pnpm hard-links package files to its store, and an
 * in-place write would change the store's copy too.
 */
export function applyLibjuicePatch(binary = locateNativeBinary()): PatchInspection {
  const inspection = inspectLibjuicePatch(binary);
  if (inspection.status !== 'unpatched' || !inspection.path) return inspection;
  const patch = LIBJUICE_ZERO_TIEBREAKER_PATCHES.find((p) => p.sha256Before === inspection.sha256)!;
  const patched = applyEdits(readFileSync(inspection.path), patch);
  const hash = sha256(patched);
  if (hash !== patch.sha256After)
    throw new Error(
      `${patch.packageName}: patched binary hashes to ${hash}, expected ${patch.sha256After}`,
    );
  const temporary = `${inspection.path}.patching-${process.pid}`;
  writeFileSync(temporary, patched, { mode: statSync(inspection.path).mode });
  renameSync(temporary, inspection.path);
  return { ...inspection, sha256: hash, status: 'applied' };
}
