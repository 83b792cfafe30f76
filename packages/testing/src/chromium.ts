import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';

/** Debian's Chromium (apt-get install chromium); CHROMIUM_PATH overrides. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface LaunchChromiumOptions {
  /**
   * What to run instead of CHROMIUM_PATH: a wrapper that execs Chromium with the arguments it
   * is given (the netns e2e runs `ip netns exec <ns> chromium "$@"`).
   */
  executablePath?: string;
  /** More command-line flags. */
  args?: string[];
}

/**
 * Headless Chromium with a fresh profile. The flags keep it from calling home (this
 * machine has no internet) and let it run as root in a container.
 */
export async function launchChromium(options: LaunchChromiumOptions = {}): Promise<{
  context: BrowserContext;
  close(): Promise<void>;
}> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
    );
  }
  const userDataDir = mkdtempSync(join(tmpdir(), 'sa-chromium-'));
  // Loaded here, not at the top: every test process imports @streamanchor/testing, and most
  // never start a browser (playwright-core takes a few hundred ms to load).
  const { chromium } = await import('playwright-core');
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: options.executablePath ?? CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(options.args ?? []),
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
