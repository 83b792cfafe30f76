import { DATA_CHANNEL_LABEL, PROTOCOL_VERSION } from '@streamanchor/protocol';
import nodeDataChannel, { type DataChannel, type PeerConnection } from 'node-datachannel';

/** A client peer connection on loopback with its `records` channel, and its full offer. */
export interface OfferingPeer {
  pc: PeerConnection;
  dc: DataChannel;
  /** The SDP offer once ICE gathering completed (no trickle towards the relay). */
  offer: Promise<string>;
}

/**
 * The client side of a session as the protocol wants it (docs/protocol.md §4): one
 * PeerConnection bound to 127.0.0.1, gathering registered before the `records` channel is
 * created (node-datachannel misses earlier events otherwise), the offer sent whole. The
 * channel speaks the newest protocol (PROTOCOL_VERSION: v2, a batch's receipts in `receipts`
 * and `anchoring` messages; see ReceiptNotices).
 */
export function offeringPeer(name: string, gatherTimeoutMs = 10_000): OfferingPeer {
  const pc = new nodeDataChannel.PeerConnection(name, { iceServers: [], bindAddress: '127.0.0.1' });
  const offer = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`ICE gathering took over ${gatherTimeoutMs / 1000} s`)),
      gatherTimeoutMs,
    );
    pc.onGatheringStateChange((state) => {
      if (state === 'complete') {
        clearTimeout(timer);
        resolve(pc.localDescription()?.sdp ?? '');
      }
    });
  });
  const dc = pc.createDataChannel(DATA_CHANNEL_LABEL, { protocol: PROTOCOL_VERSION });
  return { pc, dc, offer };
}

/** Closes both ends, ignoring what is already closed. */
export function closePeer({ pc, dc }: Pick<OfferingPeer, 'pc' | 'dc'>): void {
  try {
    dc.close();
  } catch {}
  try {
    pc.close();
  } catch {}
}
