export { createIceServerProvider, type IceConfig, type IceProviderDeps } from './from-config';
export { ICE_URI, iceServerLinks } from './link';
export {
  CLOUDFLARE_MAX_TTL_S,
  CLOUDFLARE_TURN_API_URL,
  type CloudflareProviderOptions,
  type CoturnProviderOptions,
  createCloudflareProvider,
  createCoturnProvider,
  createFallbackProvider,
  createNoIceServers,
  createStaticProvider,
  type FallbackProviderOptions,
  IceProviderError,
  type IceServer,
  type IceServerProvider,
  type IceServerRequest,
  turnUserId,
} from './providers';
