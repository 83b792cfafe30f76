/**
 * Applies the libjuice#355 fix to node-datachannel's binary (src/native/libjuice-patch.ts).
 * Run by the workspace's postinstall and by the relay's container build; safe to run again.
 * Never fails the install: on a platform without a known patch it says what that means.
 */
import { applyLibjuicePatch } from '../src/native';

try {
  const result = applyLibjuicePatch();
  if (result.status === 'applied') {
    console.log(`[rtc-relay] libjuice#355 fix applied: ${result.path}`);
  } else if (result.status !== 'not-installed') {
    console.warn(
      `[rtc-relay] no libjuice#355 fix for this node-datachannel build (${result.packageName ?? `${process.platform}-${process.arch}`}${result.sha256 ? `, sha256 ${result.sha256}` : ''}): browsers that reach the relay only through TURN over TCP or TLS will not connect (docs/deploy.md)`,
    );
  }
} catch (error) {
  console.warn(`[rtc-relay] libjuice#355 fix not applied: ${(error as Error).message}`);
}
