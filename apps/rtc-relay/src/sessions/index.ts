export { createControlWorker } from './control';
export { rtcConfigFor, SessionManager, type SessionManagerDeps } from './manager';
export {
  candidatesOf,
  offerProblem,
  withMaxMessageSize,
  withoutCandidates,
  withPublicAddress,
} from './sdp';
export { createCounters, Session, type SessionCounters, type SessionOptions } from './session';
