/**
 * Chromium as the client (real browser, Debian's chromium): its host candidates are
 * mDNS names (`<uuid>.local`) that the relay cannot resolve, so the connection only
 * works if the relay learns the browser's address as a peer-reflexive candidate from
 * its connectivity checks. The relay runs in this process with its real queues in Redis.
 */
import { launchChromium } from '@streamanchor/testing';
import { afterEach, describe, expect, test } from 'vitest';
import { startTestRelay, type TestRelay } from './support/relay';

type Browser = Awaited<ReturnType<typeof launchChromium>>;
type Page = Awaited<ReturnType<Browser['context']['newPage']>>;

let relay: TestRelay | undefined;
let browser: Browser | undefined;

afterEach(async () => {
  await browser?.close();
  browser = undefined;
  await relay?.close();
  relay = undefined;
});

// Runs in the page (kept as text: this package compiles without DOM types).
const PAGE_SCRIPT = `
window.inbox = [];
window.makeOffer = async () => {
  const pc = new RTCPeerConnection();
  window.pc = pc;
  window.dc = pc.createDataChannel('records', { protocol: 'streamanchor.v1' });
  window.dc.onmessage = (event) => window.inbox.push(JSON.parse(event.data));
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
  });
  return pc.localDescription.sdp;
};
window.acceptAnswer = async (sdp) => {
  await window.pc.setRemoteDescription({ type: 'answer', sdp });
  await new Promise((resolve, reject) => {
    if (window.dc.readyState === 'open') resolve();
    window.dc.onopen = () => resolve();
    setTimeout(() => reject(new Error('channel not open: ' + window.pc.connectionState)), 10000);
  });
};
`;

async function evaluate<T>(page: Page, expression: string): Promise<T> {
  return (await page.evaluate(expression)) as T;
}

describe('rtc-relay with Chromium', () => {
  test('default: a browser offering mDNS host candidates connects, gets hello and an ack', async () => {
    [relay, browser] = await Promise.all([startTestRelay(), launchChromium()]);
    const page = await browser.context.newPage();
    await page.evaluate(PAGE_SCRIPT);
    const offerSdp = await evaluate<string>(page, 'makeOffer()');
    // Chromium hides its addresses behind mDNS names.
    expect(offerSdp).toMatch(/^a=candidate:.* [0-9a-f-]+\.local \d+ typ host/m);

    const { answerSdp } = await relay.createSession({ offerSdp, topics: ['demo'] });
    await evaluate(page, `acceptAnswer(${JSON.stringify(answerSdp)})`);
    await evaluate(
      page,
      `dc.send(${JSON.stringify(JSON.stringify({ type: 'publish', id: 'from-chromium', topic: 'demo', payload: { hi: 1 } }))})`,
    );
    const inbox = () => evaluate<{ type: string; id?: string }[]>(page, 'inbox');
    await expect
      .poll(async () => (await inbox()).map((m) => m.type), { timeout: 10_000 })
      .toEqual(['hello', 'ack']);
    expect((await inbox())[1]).toMatchObject({ type: 'ack', id: 'from-chromium' });
    // The browser honours the relay's advertised limit.
    expect(await evaluate(page, 'pc.sctp.maxMessageSize')).toBe(4096);
  });
});
