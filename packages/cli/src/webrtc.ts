/**
 * WebRTC for the SDK in Node: node-datachannel's W3C polyfill (`node-datachannel/polyfill`),
 * passed to `connect` as `createPeerConnection`, so the SDK runs unchanged. Each CLI
 * process holds one peer connection (two node-datachannel peers in one process stall under
 * load; see apps/rtc-relay/test/support/client-process.ts).
 */
import { nodeDataChannelIceServers } from '@streamanchor/client';
import nodeDataChannel, { type LogLevel } from 'node-datachannel';
import { RTCPeerConnection } from 'node-datachannel/polyfill';

const LOG_LEVELS: readonly LogLevel[] = ['Verbose', 'Debug', 'Info', 'Warning', 'Error', 'Fatal'];

let loggerReady = false;

/** A polyfilled RTCPeerConnection; libdatachannel logs (NDC_LOG, default Error) go to stderr. */
export function createPeerConnection(config: RTCConfiguration): globalThis.RTCPeerConnection {
  if (!loggerReady) {
    loggerReady = true;
    const wanted = process.env.NDC_LOG as LogLevel | undefined;
    const level = wanted && LOG_LEVELS.includes(wanted) ? wanted : 'Error';
    nodeDataChannel.initLogger(level, (at, message) =>
      process.stderr.write(`[node-datachannel ${at}] ${message}\n`),
    );
  }
  // The polyfill implements the DOM interface; only its declared `ondatachannel` event type
  // (its own RTCDataChannelEvent class) keeps TypeScript from seeing it.
  // TURN credentials (the gateway's Link headers) go to libdatachannel inside a URL.
  const iceServers = nodeDataChannelIceServers(config.iceServers);
  return new RTCPeerConnection({
    ...config,
    iceServers,
  }) as unknown as globalThis.RTCPeerConnection;
}

/** Stops node-datachannel's threads (call once, after every peer connection is closed). */
export function releaseWebRtc(): void {
  nodeDataChannel.cleanup();
}
