import type { IceServer } from './link-header';

/**
 * ICE servers for node-datachannel's W3C polyfill (`node-datachannel/polyfill`), which hands
 * libdatachannel each TURN server as one URL, `turn:<username>:<credential>@host:port`,
 * without encoding them: a username with a colon (every coturn TURN REST username,
 * `<expiry>:<subject>`) is split in the wrong place and the TURN server refuses the
 * allocation. libdatachannel percent-decodes both parts, so this percent-encodes them.
 * Browsers take credentials as they are: use this only for node-datachannel, e.g.
 *
 *   createPeerConnection: (config) =>
 *     new RTCPeerConnection({ ...config, iceServers: nodeDataChannelIceServers(config.iceServers) })
 */
export function nodeDataChannelIceServers(
  servers: readonly RTCIceServer[] | readonly IceServer[] | undefined,
): IceServer[] {
  return (servers ?? []).map((server) => {
    const encoded: IceServer = { urls: server.urls };
    if (server.username !== undefined) encoded.username = encodeURIComponent(server.username);
    if (server.credential !== undefined) encoded.credential = encodeURIComponent(server.credential);
    return encoded;
  });
}
