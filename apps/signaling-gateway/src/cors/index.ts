import type { FastifyInstance } from 'fastify';

export const CORS_ALLOWED_METHODS = 'GET, POST, PATCH, DELETE, OPTIONS';
export const CORS_ALLOWED_HEADERS = 'Authorization, Content-Type, If-Match';
/** Response headers a browser script may read (WHIP clients need Location and ETag). */
export const CORS_EXPOSED_HEADERS =
  'Location, ETag, Link, Retry-After, Accept-Post, Accept-Patch, WWW-Authenticate';
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/**
 * Minimal CORS for the configured origins (or `*`), installed on the root instance so it
 * covers every route, errors included. Preflights to paths without an OPTIONS route are
 * answered here (204); OPTIONS /v1/sessions still answers itself, with these headers added.
 * No credentials: the API takes bearer tokens, not cookies.
 */
export function installCors(app: FastifyInstance, origins: readonly string[]): void {
  if (origins.length === 0) return;
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins);

  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    reply.header('Vary', 'Origin');
    if (!origin || !(anyOrigin || allowed.has(origin))) return;
    reply.header('Access-Control-Allow-Origin', anyOrigin ? '*' : origin);
    reply.header('Access-Control-Expose-Headers', CORS_EXPOSED_HEADERS);
    const isPreflight =
      request.method === 'OPTIONS' &&
      request.headers['access-control-request-method'] !== undefined;
    if (!isPreflight) return;
    reply.header('Access-Control-Allow-Methods', CORS_ALLOWED_METHODS);
    reply.header('Access-Control-Allow-Headers', CORS_ALLOWED_HEADERS);
    reply.header('Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_SECONDS));
    if (request.routeOptions.url === undefined) return reply.code(204).send();
  });
}
