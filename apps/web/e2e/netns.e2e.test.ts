/**
 * TURN proven with a firewall, not with a browser setting: Chromium runs in its own network
 * namespace whose nftables rules drop every UDP packet to the stack's address (the relay's
 * ICE port among them), and reaches the relay only through a real coturn in a third
 * namespace, running the deployment config (infra/coturn/turnserver.conf) with the test's
 * network added. The page connects with the SDK's defaults (ICE servers from the gateway's
 * Link headers, ICE_PROVIDER=coturn; no iceTransportPolicy), once over TURN/UDP and once
 * over TURN/TCP (all UDP dropped), publishes records and verifies their final receipts
 * against anvil. coturn refuses an expired credential. Then the other way round: a relay
 * that reaches the client only through its own allocation on coturn (ICE_SERVERS with
 * ICE_TURN_SECRET), the client having no TURN at all. See netns.ts for the topology.
 *
 * Needs root (network namespaces, veth links, nftables in the client namespace only): it
 * fails, never skips, without.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Stack, startStack } from '@streamanchor/stack';
import { launchChromium, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoRecord } from '../src/demo';
import { E2E_FINALITY_DEPTH } from './harness';
import {
  chromiumInNetns,
  createNetns,
  directUdpDrops,
  type FirewallMode,
  freeUdpPort,
  type Netns,
  type NetnsCoturn,
  setFirewall,
  startNetnsCoturn,
} from './netns';

declare global {
  interface Window {
    /** Every RTCPeerConnection the page made, oldest first (recorded by an init script). */
    peerConnections: RTCPeerConnection[];
  }
}

interface CandidateInfo {
  candidateType: string;
  protocol: string;
  relayProtocol?: string;
  address: string;
  port: number;
}

interface SelectedPair {
  local: CandidateInfo;
  remote: CandidateInfo;
  /** Every candidate pair, for failure messages. */
  pairs: string[];
}

/** The selected candidate pair of the page's newest peer connection (getStats). */
function selectedPair(page: Page): Promise<SelectedPair | null> {
  return page.evaluate(async () => {
    const pc = window.peerConnections.at(-1);
    if (!pc) return null;
    const stats = await pc.getStats();
    const all = [...stats.values()] as Record<string, unknown>[];
    const candidate = (id: unknown): CandidateInfo => {
      const c = stats.get(id as string) as Record<string, unknown>;
      return {
        candidateType: c.candidateType as string,
        protocol: c.protocol as string,
        relayProtocol: c.relayProtocol as string | undefined,
        address: c.address as string,
        port: c.port as number,
      };
    };
    const describePair = (p: Record<string, unknown>) => {
      const l = candidate(p.localCandidateId);
      const r = candidate(p.remoteCandidateId);
      return `${l.candidateType}/${l.relayProtocol ?? l.protocol} ${l.address}:${l.port} → ${r.candidateType} ${r.address}:${r.port} ${p.state}${p.nominated ? ' nominated' : ''}`;
    };
    const pairs = all.filter((s) => s.type === 'candidate-pair');
    const transport = all.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    const selected =
      (transport && (stats.get(transport.selectedCandidatePairId as string) as typeof transport)) ??
      pairs.find((p) => p.nominated && p.state === 'succeeded');
    if (!selected) return { local: null, remote: null, pairs: pairs.map(describePair) } as never;
    return {
      local: candidate(selected.localCandidateId),
      remote: candidate(selected.remoteCandidateId),
      pairs: pairs.map(describePair),
    };
  });
}

/** Gathers ICE candidates in the page with one TURN server; the relay candidates and errors. */
function gatherWith(page: Page, server: { urls: string; username: string; credential: string }) {
  return page.evaluate(async (iceServer) => {
    const pc = new RTCPeerConnection({ iceServers: [iceServer] });
    const relay: string[] = [];
    const errors: { errorCode: number; errorText: string; url: string }[] = [];
    pc.addEventListener('icecandidate', (event) => {
      if (event.candidate?.type === 'relay') relay.push(event.candidate.candidate);
    });
    pc.addEventListener('icecandidateerror', (event) => {
      const e = event as RTCPeerConnectionIceErrorEvent;
      errors.push({ errorCode: e.errorCode, errorText: e.errorText, url: e.url });
    });
    pc.createDataChannel('probe');
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 10_000);
      const check = () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      };
      pc.addEventListener('icegatheringstatechange', check);
      check();
    });
    pc.close();
    return { relay, errors };
  }, server);
}

interface NetnsDemo {
  net: Netns;
  coturn: NetnsCoturn;
  stack: Stack;
  page: Page;
  icePort: number;
  pageErrors: string[];
  /** The stack's last lines and coturn's log, for failure messages. */
  failure(): string;
  close(): Promise<void>;
}

/**
 * Namespaces, coturn (deployment config plus the test network), the stack on link A, and
 * Chromium in the client namespace with the demo page open (its session opened or failed).
 */
async function openNetnsDemo(options: {
  secret: string;
  firewall: FirewallMode;
  stackEnv: (net: Netns) => Record<string, string | undefined>;
  /** Peers coturn may relay to beyond the stack's address. */
  coturnPeers?: (net: Netns) => string[];
  chromiumArgs?: string[];
  signal: AbortSignal;
}): Promise<NetnsDemo> {
  const started = Date.now();
  const output: string[] = [];
  const pageErrors: string[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const close = async () => {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.reverse()) await cleanup().catch((e) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, 'netns test cleanup failed');
  };
  try {
    const net = await createNetns();
    cleanups.push(() => net.remove());
    const coturn = await startNetnsCoturn(net, options.secret, options.coturnPeers?.(net));
    cleanups.push(() => coturn.close());
    setFirewall(net, options.firewall);

    const dataDir = mkdtempSync(join(tmpdir(), 'sa-e2e-netns-'));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const icePort = await freeUdpPort(net.stack);
    const stack = await startStack({
      env: {
        ...process.env,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: testRedisPrefix('e2e-netns'),
        DATA_DIR: dataDir,
        DATABASE_URL: undefined,
        // Gateway, relay (its one muxed ICE port) and anvil on the stack's address of link A.
        HOST: net.stack,
        PORT: '0',
        ANVIL_PORT: '0',
        ANVIL_BLOCK_TIME: '1',
        FINALITY_DEPTH: String(E2E_FINALITY_DEPTH),
        JWT_SECRET: undefined,
        ICE_UDP_PORT: String(icePort),
        LOG_LEVEL: 'warn',
        // No ops servers (metrics) unless the stack gives each service its own port.
        OPS_PORT: '0',
        ...options.stackEnv(net),
      },
      anvilHost: net.stack,
      output: (line) => {
        output.push(line);
        if (/^\[stack\]|WARN|ERROR|FATAL/.test(line)) console.log(line);
      },
      clearRedisOnStop: true,
      signal: options.signal,
    });
    cleanups.push(() => stack.stop());

    const browserDir = mkdtempSync(join(tmpdir(), 'sa-e2e-netns-chromium-'));
    cleanups.push(async () => rmSync(browserDir, { recursive: true, force: true }));
    const browser = await launchChromium({
      executablePath: chromiumInNetns(net.client, browserDir),
      args: options.chromiumArgs,
    });
    cleanups.push(() => browser.close());
    await browser.context.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      window.peerConnections = [];
      window.RTCPeerConnection = class extends Native {
        constructor(configuration?: RTCConfiguration) {
          super(configuration);
          window.peerConnections.push(this);
        }
      };
    });
    const page = await browser.context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(stack.demoUrl);
    await page.waitForFunction(
      () =>
        window.streamAnchorDemo &&
        ['open', 'error', 'closed'].includes(window.streamAnchorDemo.state),
      null,
      { timeout: 60_000, polling: 100 },
    );
    console.log(`[e2e netns] namespaces, coturn, stack and page up in ${Date.now() - started} ms`);
    const failure = () =>
      `\n--- stack ---\n${output.slice(-30).join('\n')}\n--- coturn ---\n${coturn.log().slice(-6000)}`;
    return { net, coturn, stack, page, icePort, pageErrors, failure, close };
  } catch (error) {
    await close().catch((cleanup) => console.error(cleanup));
    throw error;
  }
}

/** The page's session state, with the selected pair and logs when it is not open. */
async function expectOpen(demo: NetnsDemo): Promise<void> {
  const state = await demo.page.evaluate(() => ({
    state: window.streamAnchorDemo.state,
    error: window.streamAnchorDemo.error,
  }));
  expect(
    state,
    `${JSON.stringify(await selectedPair(demo.page), null, 2)}${demo.failure()}`,
  ).toEqual({ state: 'open', error: null });
}

/** Publishes n records; waits until `total` records are final and verified in the page. */
async function publishAndVerify(demo: NetnsDemo, n: number, total: number): Promise<void> {
  const { page } = demo;
  const tally = await page.evaluate((count) => window.streamAnchorDemo.publish(count), n);
  expect(tally).toEqual({ acked: n, nacked: 0, failed: 0 });
  await page
    .waitForFunction(
      (target) => {
        const api = window.streamAnchorDemo;
        return api.anchoring.final >= target && api.counts.verified + api.counts.failed >= target;
      },
      total,
      { timeout: 60_000, polling: 250 },
    )
    .catch(async (error) => {
      const counts = await page.evaluate(() => ({
        counts: window.streamAnchorDemo.counts,
        anchoring: window.streamAnchorDemo.anchoring,
      }));
      throw new Error(`${(error as Error).message}\n${JSON.stringify(counts)}${demo.failure()}`);
    });
  const records: DemoRecord[] = await page.evaluate(() => window.streamAnchorDemo.records());
  expect(records).toHaveLength(total);
  for (const record of records) {
    expect(record.state, `record #${record.seq}: ${record.error}`).toBe('verified');
    expect(record.receipt?.status).toBe('final');
    expect(record.receipt?.confirmations).toBeGreaterThanOrEqual(E2E_FINALITY_DEPTH);
    expect(record.verification?.valid).toBe(true);
    expect(record.verification?.onChain.canonical).toBe(true);
  }
}

/** Ends the page's session and opens a new one (the SDK's defaults, the page's token). */
async function reconnect(demo: NetnsDemo): Promise<void> {
  await demo.page.evaluate(async (token) => {
    const api = window.streamAnchorDemo;
    await api.close();
    await api.connect(token);
  }, demo.stack.token);
}

describe('TURN through coturn when the firewall drops UDP to the relay (network namespaces)', () => {
  const secret = randomBytes(24).toString('hex');
  const starting = new AbortController();
  let demo: NetnsDemo;

  beforeAll(async () => {
    demo = await openNetnsDemo({
      secret,
      firewall: 'turn-udp',
      signal: starting.signal,
      stackEnv: (net) => ({
        ICE_PROVIDER: 'coturn',
        TURN_SECRET: secret,
        TURN_URLS: [
          `turn:${net.turnAddress}:3478?transport=udp`,
          `turn:${net.turnAddress}:3478?transport=tcp`,
        ].join(','),
      }),
    });
  });

  afterAll(async () => {
    starting.abort();
    await demo?.close();
  });

  /** The page's session is open over a relay candidate of coturn, with TURN over `transport`. */
  async function expectRelayedOver(transport: 'udp' | 'tcp'): Promise<void> {
    const { net, page, icePort } = demo;
    await expectOpen(demo);
    const pair = await selectedPair(page);
    const context = JSON.stringify(pair, null, 2);
    expect(pair?.local?.candidateType, context).toBe('relay');
    expect(pair?.local?.relayProtocol, context).toBe(transport);
    // The relay sees coturn's relayed address (link B), on its own host candidate.
    expect(pair?.local?.address, context).toBe(net.turnRelay);
    expect(pair?.remote, context).toMatchObject({
      candidateType: 'host',
      address: net.stack,
      port: icePort,
    });
    // Chromium did try the relay's UDP port directly; the firewall dropped it.
    expect(directUdpDrops(net)).toBeGreaterThan(0);
  }

  it('default: no UDP to the relay, TURN over UDP: the session opens through coturn, records get final receipts verified in the page', async () => {
    await expectRelayedOver('udp');
    await publishAndVerify(demo, 10, 10);
  });

  it('behavior: no UDP at all, TURN over TCP: a new session opens through coturn over TCP, records get final receipts verified', async () => {
    // Chromium's checks over a TURN/TCP allocation carry a tiebreaker of 0; the relay answers
    // them only with the libjuice#355 fix applied at install (apps/rtc-relay/src/native).
    setFirewall(demo.net, 'turn-tcp');
    await reconnect(demo);
    await expectRelayedOver('tcp');
    await publishAndVerify(demo, 10, 20);
    expect(demo.pageErrors).toEqual([]);
  });

  it('error: coturn (the deployment config) refuses an expired credential; a fresh one from the gateway allocates', async () => {
    const { net, page, stack } = demo;
    setFirewall(net, 'turn-udp');
    const urls = `turn:${net.turnAddress}:3478?transport=udp`;
    // A fresh credential, as the gateway hands it out (OPTIONS /v1/sessions, Link headers).
    const options = await fetch(`${stack.urls.api}/v1/sessions`, {
      method: 'OPTIONS',
      headers: { authorization: `Bearer ${stack.token}` },
    });
    const link = options.headers.get('link') ?? '';
    const [, username, credential] =
      /<turn:[^>]*transport=udp>[^,]*username="([^"]+)"; credential="([^"]+)"/.exec(link) ?? [];
    expect(username, link).toMatch(/^\d+:demo$/);
    const fresh = await gatherWith(page, { urls, username: username!, credential: credential! });
    expect(fresh.relay, JSON.stringify(fresh.errors)).toHaveLength(1);

    // The gateway's scheme (username `<expiry>:<subject>`, HMAC-SHA1 of it under the
    // secret), with an expiry 100 s ago: a credential that was valid and has expired.
    const expiredName = `${Math.floor(Date.now() / 1000) - 100}:demo`;
    const expired = await gatherWith(page, {
      urls,
      username: expiredName,
      credential: createHmac('sha1', secret).update(expiredName).digest('base64'),
    });
    expect(expired.relay).toEqual([]);
    expect(expired.errors.map((e) => e.errorCode)).toContain(401);
  });
});

describe('a relay that reaches clients only through its own TURN allocation (network namespaces)', () => {
  const secret = randomBytes(24).toString('hex');
  const starting = new AbortController();
  let demo: NetnsDemo;

  beforeAll(async () => {
    demo = await openNetnsDemo({
      secret,
      // No UDP between client and stack either way, and no TURN for the client: the one path
      // is the relay's allocation on coturn (link C to its relayed address, link B to the relay).
      firewall: 'relay-turn',
      signal: starting.signal,
      coturnPeers: (net) => [net.clientTurnLink],
      stackEnv: (net) => ({
        // STUN only for the client: its server-reflexive address is what the relay opens a
        // TURN permission for (as in the field, where that address is the client's NAT).
        ICE_PROVIDER: 'static',
        ICE_STUN_URLS: `stun:${net.turnAddress}:3478`,
        // The relay allocates on coturn with credentials it mints from the shared secret, and
        // sends its checks to the candidates the client trickles.
        ICE_SERVERS: `turn:${net.turnRelay}:3478`,
        ICE_TURN_SECRET: secret,
        ICE_USE_OFFER_CANDIDATES: 'true',
        // libjuice allocates on TURN only without the UDP mux: one port per session.
        ICE_UDP_PORT: '0',
      }),
    });
  });

  afterAll(async () => {
    starting.abort();
    await demo?.close();
  });

  it("default: the session opens through the relay's TURN allocation, records get final receipts verified in the page", async () => {
    const { net, page } = demo;
    await expectOpen(demo);
    const pair = await selectedPair(page);
    const context = JSON.stringify(pair, null, 2);
    // The page talks from its own host candidate (an mDNS name: getStats shows no address)
    // to the relay's relayed address on coturn.
    expect(pair?.local?.candidateType, context).toBe('host');
    expect(pair?.remote, context).toMatchObject({ candidateType: 'relay', address: net.turnRelay });
    expect(directUdpDrops(net)).toBeGreaterThan(0);
    await publishAndVerify(demo, 10, 10);
    expect(demo.pageErrors).toEqual([]);
  });
});
