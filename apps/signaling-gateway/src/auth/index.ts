export { type Authenticate, createAuthenticator } from './authenticate';
export {
  CLOCK_TOLERANCE_SECONDS,
  type MintTokenOptions,
  mintToken,
  TOKEN_ALGORITHM,
  TokenError,
  verifyToken,
} from './token';
