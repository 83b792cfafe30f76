import type { Logger } from '@streamanchor/service-kit';
import type { Config } from '../config';
import {
  createCloudflareProvider,
  createCoturnProvider,
  createFallbackProvider,
  createNoIceServers,
  createStaticProvider,
  type IceServer,
  type IceServerProvider,
} from './providers';

export type IceConfig = Pick<
  Config,
  | 'ICE_PROVIDER'
  | 'ICE_STUN_URLS'
  | 'TURN_URLS'
  | 'TURN_SECRET'
  | 'TURN_TTL_SECONDS'
  | 'CLOUDFLARE_TURN_KEY_ID'
  | 'CLOUDFLARE_TURN_API_TOKEN'
  | 'CLOUDFLARE_TURN_API_URL'
  | 'ICE_PROVIDER_TIMEOUT_MS'
>;

export interface IceProviderDeps {
  logger: Logger;
  /** For the Cloudflare API (tests pass their own). Default globalThis.fetch. */
  fetch?: typeof globalThis.fetch;
  now?: () => number;
}

/**
 * The provider ICE_PROVIDER names, built from the gateway's config (loadConfig checked that
 * what it needs is there). `cloudflare` falls back to ICE_STUN_URLS (possibly none) when the
 * API fails, and logs a warning: see createFallbackProvider.
 */
export function createIceServerProvider(
  config: IceConfig,
  { logger, fetch, now }: IceProviderDeps,
): IceServerProvider {
  const stun: IceServer[] = config.ICE_STUN_URLS.length > 0 ? [{ urls: config.ICE_STUN_URLS }] : [];
  const missing = (variable: string): never => {
    throw new Error(`${variable} is required with ICE_PROVIDER=${config.ICE_PROVIDER}`);
  };
  switch (config.ICE_PROVIDER) {
    case 'none':
      return createNoIceServers();
    case 'static':
      return createStaticProvider(stun);
    case 'coturn':
      return createCoturnProvider({
        secret: config.TURN_SECRET ?? missing('TURN_SECRET'),
        urls: config.TURN_URLS,
        ttlS: config.TURN_TTL_SECONDS,
        stun,
        now,
      });
    case 'cloudflare':
      return createFallbackProvider(
        createCloudflareProvider({
          keyId: config.CLOUDFLARE_TURN_KEY_ID ?? missing('CLOUDFLARE_TURN_KEY_ID'),
          apiToken: config.CLOUDFLARE_TURN_API_TOKEN ?? missing('CLOUDFLARE_TURN_API_TOKEN'),
          ttlS: config.TURN_TTL_SECONDS,
          baseUrl: config.CLOUDFLARE_TURN_API_URL,
          timeoutMs: config.ICE_PROVIDER_TIMEOUT_MS,
          fetch,
          now,
        }),
        createStaticProvider(stun),
        {
          onError: (error) =>
            logger.warn(
              { err: error, fallback: config.ICE_STUN_URLS },
              'Cloudflare TURN credentials unavailable; handing out ICE_STUN_URLS only',
            ),
        },
      );
  }
}
