export { createRelayClient, type RelayClient, type RelayClientOptions } from './relay-client';
export {
  RETRY_AFTER_SECONDS,
  SDP_CONTENT_TYPE,
  type SessionsOptions,
  sessionsRoutes,
} from './routes';
export { InvalidOfferError, iceUfragOf, sessionEtag, validateOffer } from './sdp';
