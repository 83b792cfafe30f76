import { createHmac } from 'node:crypto';

/**
 * The TURN REST API credential coturn checks with `use-auth-secret`
 * (draft-uberti-behave-turn-rest-00; coturn's README.turnserver, "--use-auth-secret"):
 * username `<expiry>:<user id>`, expiry in seconds since the epoch; password
 * base64(HMAC-SHA1(secret, username)). coturn refuses the username once expiry has passed.
 * The gateway mints these for clients, the relay for its own allocations.
 */
export function coturnCredential(
  secret: string,
  expiresAtS: number,
  userId: string,
): { username: string; credential: string } {
  const username = `${expiresAtS}:${userId}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}
