export { type Authenticate, createAuthenticator } from './authenticate';
export {
  CLOCK_TOLERANCE_SECONDS,
  type MintTokenOptions,
  mintToken,
  TOKEN_ALGORITHM,
  TokenError,
  type TokenErrorReason,
  type VerifyOptions,
  verifyToken,
} from './token';
