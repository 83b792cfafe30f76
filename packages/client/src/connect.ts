import { DATA_CHANNEL_LABEL, PROTOCOL_VERSION } from '@streamanchor/protocol';
import { ConnectError } from './errors';
import type { IceServer } from './link-header';
import { StreamAnchorSession } from './session';
import { defaultFetch, type FetchLike, fetchSessionOptions, postOffer } from './signaling';
import { createTrickler, type Trickler } from './trickle';

export interface ConnectOptions {
  /** Origin (and optional path prefix) of the signaling gateway, e.g. `https://anchor.example.com`. */
  baseUrl: string;
  /** Bearer token (HS256 JWT) granting a subject and topics. */
  token: string;
  /**
   * ICE servers for this connection (STUN/TURN), besides the gateway's. Default: none (the
   * gateway's only; none at all means host candidates only).
   */
  iceServers?: IceServer[];
  /**
   * Ask the gateway for its ICE servers (`OPTIONS /v1/sessions` with the token, their TURN
   * credentials minted for this session) before building the offer, and add them after
   * `iceServers`. Default true. A failed request only means no servers from it: the POST
   * reports what is wrong with the gateway or the token.
   */
  fetchIceServers?: boolean;
  /** A fetch to use instead of `globalThis.fetch`. */
  fetch?: FetchLike;
  /**
   * Trickle ICE (docs/protocol.md §3.1.2): POST the offer at once, with whatever candidates it
   * has (often none), and PATCH the others to the session as they are gathered, then
   * `a=end-of-candidates`. Default: true when the gateway's OPTIONS answer says it takes them
   * (`Accept-Patch: application/trickle-ice-sdpfrag`), false otherwise (also when
   * `fetchIceServers` is false). False: wait for gathering (up to iceGatheringTimeoutMs) and
   * POST every candidate in the offer. A gateway that answers a PATCH with 405 gets no more.
   */
  trickle?: boolean;
  /**
   * Without trickle: how long to wait for ICE gathering before sending the candidates
   * gathered so far. With trickle: how long candidates are trickled. Default 5000.
   */
  iceGatheringTimeoutMs?: number;
  /** How long to wait, after the answer, for the channel to open and the relay's hello. Default 10000. */
  openTimeoutMs?: number;
  /**
   * Makes the peer connection; defaults to `new RTCPeerConnection(config)` (for polyfills and
   * tests). With node-datachannel's polyfill, wrap its iceServers in nodeDataChannelIceServers.
   */
  createPeerConnection?: (config: RTCConfiguration) => RTCPeerConnection;
  /** Publishing waits while more than this many bytes are queued on the channel. Default 1 MiB. */
  bufferHighWaterMark?: number;
  /** …until the queue drains to this many bytes. Default 256 KiB. */
  bufferLowWaterMark?: number;
  /**
   * How many records the session remembers receipts for (`receiptFor`, `finalReceipt`,
   * the revision check of `onReceipt`). Default 10 000; long-final records are forgotten first.
   */
  maxTrackedRecords?: number;
}

/**
 * Opens a session: asks the gateway for ICE servers (OPTIONS with the token), creates the
 * peer connection with them and the `records` data channel, POSTs the offer to
 * `${baseUrl}/v1/sessions` (at once with trickle ICE, else once gathering completed),
 * applies the answer, trickles the candidates gathered after the offer (PATCH) and waits for
 * the relay's hello.
 *
 * Rejects with SessionRequestError when the gateway refuses the offer (problem+json
 * fields on it), ConnectError when the gateway cannot be reached or the channel does
 * not open in time. On failure everything it created is closed again.
 */
export async function connect(options: ConnectOptions): Promise<StreamAnchorSession> {
  const fetch = options.fetch ?? defaultFetch;
  const none = { iceServers: [] as IceServer[], trickle: false };
  const offered =
    options.fetchIceServers === false
      ? none
      : await fetchSessionOptions({ baseUrl: options.baseUrl, token: options.token, fetch }).catch(
          () => none,
        );
  const trickle = options.trickle ?? offered.trickle;
  const iceGatheringTimeoutMs = options.iceGatheringTimeoutMs ?? 5000;
  const config: RTCConfiguration = {
    iceServers: [...(options.iceServers ?? []), ...offered.iceServers],
  };
  const createPeerConnection =
    options.createPeerConnection ??
    ((configuration: RTCConfiguration) => {
      if (typeof RTCPeerConnection === 'undefined') {
        throw new ConnectError('RTCPeerConnection is not available here', {
          details:
            'Run in a browser, or pass createPeerConnection (for example from a WebRTC polyfill).',
        });
      }
      return new RTCPeerConnection(configuration);
    });
  const pc = createPeerConnection(config);
  // Listening before the channel exists: a polyfill may start gathering with it.
  const trickler: Trickler | undefined = trickle ? createTrickler(pc) : undefined;
  // The channel must exist before the offer so that the offer carries an SCTP section.
  const channel = pc.createDataChannel(DATA_CHANNEL_LABEL, {
    ordered: true,
    protocol: PROTOCOL_VERSION,
  });
  const session = new StreamAnchorSession({
    pc,
    channel,
    token: options.token,
    fetch,
    bufferHighWaterMark: options.bufferHighWaterMark ?? 1024 * 1024,
    bufferLowWaterMark: options.bufferLowWaterMark ?? 256 * 1024,
    maxTrackedRecords: options.maxTrackedRecords,
  });
  let resourceCreated = false;
  try {
    await pc.setLocalDescription(await pc.createOffer());
    if (!trickler) await waitForIceGathering(pc, iceGatheringTimeoutMs);
    const offerSdp = pc.localDescription?.sdp;
    if (!offerSdp) throw new ConnectError('The peer connection produced no local description');
    const resource = await postOffer({
      baseUrl: options.baseUrl,
      token: options.token,
      offerSdp,
      fetch,
    });
    resourceCreated = true;
    session.attachResource(resource);
    if (resource.iceServers.length > 0) {
      // Takes effect at the next ICE gathering (restart); kept so the config reflects the gateway's.
      try {
        pc.setConfiguration({
          ...pc.getConfiguration(),
          iceServers: [...(options.iceServers ?? []), ...resource.iceServers],
        });
      } catch {
        // An implementation that refuses to change ICE servers mid-session: nothing lost.
      }
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: resource.answerSdp });
    // After the answer is applied: the relay's DTLS hello, which its checks may bring at once,
    // must find the answer in place.
    trickler?.start({
      url: resource.url,
      token: options.token,
      etag: resource.etag,
      offerSdp,
      fetch,
      timeoutMs: iceGatheringTimeoutMs,
    });
    await session.waitUntilReady(options.openTimeoutMs ?? 10_000);
    return session;
  } catch (error) {
    trickler?.stop();
    if (resourceCreated) await session.close().catch(() => undefined);
    else {
      try {
        pc.close();
      } catch {
        // already closed
      }
    }
    throw error;
  }
}

/** Resolves when ICE gathering completes, or after `timeoutMs` with what was gathered so far. */
function waitForIceGathering(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onStateChange);
      pc.removeEventListener('icecandidate', onCandidate);
      resolve();
    };
    const onStateChange = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const onCandidate = (event: RTCPeerConnectionIceEvent) => {
      if (event.candidate === null) done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', onStateChange);
    pc.addEventListener('icecandidate', onCandidate);
  });
}
