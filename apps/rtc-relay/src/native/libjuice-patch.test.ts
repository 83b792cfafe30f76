import { createHash } from 'node:crypto';
import { copyFileSync, linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import {
  applyLibjuicePatch,
  inspectLibjuicePatch,
  LIBJUICE_ZERO_TIEBREAKER_PATCHES,
  locateNativeBinary,
} from './libjuice-patch';

const [patch] = LIBJUICE_ZERO_TIEBREAKER_PATCHES;
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** The released (unpatched) binary, rebuilt from the installed one by undoing the edits. */
function releasedCopy(): { path: string; packageName: string; version: string } {
  const installed = locateNativeBinary();
  if (typeof installed === 'string') throw new Error(`node-datachannel binary: ${installed}`);
  dir = mkdtempSync(join(tmpdir(), 'sa-libjuice-'));
  const bytes = readFileSync(installed.path);
  for (const edit of patch!.edits) Buffer.from(edit.before, 'hex').copy(bytes, edit.offset);
  const path = join(dir, 'node_datachannel.node');
  writeFileSync(path, bytes);
  return { ...installed, path };
}

describe('libjuice#355 patch', () => {
  test('default: the node-datachannel binary this workspace loads has the fix (postinstall)', () => {
    const linuxX64Gnu = process.platform === 'linux' && process.arch === 'x64';
    expect(inspectLibjuicePatch().status).toBe(linuxX64Gnu ? 'applied' : 'unknown-build');
  });

  test('behavior: the released binary is patched at exactly the two edits, to the known hash; applying again changes nothing', () => {
    const released = releasedCopy();
    expect(sha256(released.path)).toBe(patch!.sha256Before);
    expect(inspectLibjuicePatch(released).status).toBe('unpatched');

    const before = readFileSync(released.path);
    expect(applyLibjuicePatch(released)).toMatchObject({
      status: 'applied',
      sha256: patch!.sha256After,
    });
    const after = readFileSync(released.path);
    const changed = [...after.keys()].filter((i) => after[i] !== before[i]);
    const edited = patch!.edits.flatMap((edit) =>
      Array.from({ length: edit.before.length / 2 }, (_, k) => edit.offset + k),
    );
    // Bytes equal in `before` and `after` of an edit (the 0f of je and 0f of nopw) stay put.
    expect(changed.every((i) => edited.includes(i))).toBe(true);
    expect(changed.length).toBeGreaterThan(0);

    expect(applyLibjuicePatch(released).status).toBe('applied');
    expect(sha256(released.path)).toBe(patch!.sha256After);
  });

  test('behavior: the patched file replaces the old one: another hard link to it (pnpm store) keeps the released bytes', () => {
    const released = releasedCopy();
    const storeCopy = join(dir!, 'store-link.node');
    linkSync(released.path, storeCopy);
    applyLibjuicePatch(released);
    expect(sha256(storeCopy)).toBe(patch!.sha256Before);
    expect(sha256(released.path)).toBe(patch!.sha256After);
  });

  test('error: a binary of any other build is reported and left alone', () => {
    const released = releasedCopy();
    const other = join(dir!, 'other.node');
    copyFileSync(released.path, other);
    const bytes = readFileSync(other);
    bytes[0x100] = bytes[0x100]! ^ 0xff;
    writeFileSync(other, bytes);
    const binary = { ...released, path: other };
    expect(applyLibjuicePatch(binary)).toMatchObject({ status: 'unknown-build', path: other });
    expect(readFileSync(other).equals(bytes)).toBe(true);
  });
});
