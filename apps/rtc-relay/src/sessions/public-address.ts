import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '@streamanchor/service-kit';

/** How often a hostname ICE_PUBLIC_ADDRESS is resolved again (a dynamic DNS name may move). */
export const PUBLIC_ADDRESS_REFRESH_MS = 60_000;

export interface PublicAddress {
  /** Resolves a hostname once (throws when it does not resolve), then keeps it fresh. */
  start(): Promise<void>;
  /** The IP address answers announce now; undefined when none is configured. */
  current(): string | undefined;
  stop(): void;
}

type Resolve = (hostname: string) => Promise<string>;

const resolveHostname: Resolve = async (hostname) => (await lookup(hostname)).address;

/**
 * ICE_PUBLIC_ADDRESS as an IP address: an IP is used as it is; a hostname is resolved when
 * the relay starts (a name that does not resolve stops the start: the relay would announce
 * nothing clients can reach) and again every `refreshMs`, keeping the last address when a
 * later lookup fails. Candidates carry an IP, not a name: not every WebRTC stack resolves
 * names in remote candidates.
 */
export function createPublicAddress(
  configured: string | undefined,
  {
    logger,
    resolve = resolveHostname,
    refreshMs = PUBLIC_ADDRESS_REFRESH_MS,
  }: { logger: Logger; resolve?: Resolve; refreshMs?: number },
): PublicAddress {
  let address = configured !== undefined && isIP(configured) ? configured : undefined;
  let timer: NodeJS.Timeout | undefined;
  const hostname = configured !== undefined && address === undefined ? configured : undefined;

  const refresh = async () => {
    if (!hostname) return;
    try {
      const next = await resolve(hostname);
      if (next !== address) logger.info({ hostname, address: next }, 'ICE_PUBLIC_ADDRESS resolved');
      address = next;
    } catch (error) {
      logger.warn(
        { err: error, hostname, keeping: address },
        'could not resolve ICE_PUBLIC_ADDRESS',
      );
    }
  };

  return {
    async start() {
      if (!hostname) return;
      try {
        address = await resolve(hostname);
      } catch (error) {
        throw new Error(
          `ICE_PUBLIC_ADDRESS ${hostname} does not resolve: ${(error as Error).message}`,
        );
      }
      logger.info({ hostname, address }, 'ICE_PUBLIC_ADDRESS resolved');
      timer = setInterval(() => void refresh(), refreshMs);
      timer.unref();
    },
    current: () => address,
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
