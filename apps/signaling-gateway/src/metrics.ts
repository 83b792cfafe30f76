import { Counter, collectedMetric, sharedMetric } from '@streamanchor/service-kit';
import type { FastifyInstance } from 'fastify';
import type { IceServerProvider } from './ice';

/** The gateway's metrics (docs: README "Observability"). */
const sessionsCreated = sharedMetric(
  'streamanchor_gateway_sessions_created_total',
  () =>
    new Counter({
      name: 'streamanchor_gateway_sessions_created_total',
      help: 'sessions opened (POST /v1/sessions answered 201)',
    }),
);

const sessionsRefused = sharedMetric(
  'streamanchor_gateway_sessions_refused_total',
  () =>
    new Counter({
      name: 'streamanchor_gateway_sessions_refused_total',
      help: 'POST /v1/sessions answered with a problem, by problem code',
      labelNames: ['code'],
    }),
);

const httpRequests = sharedMetric(
  'streamanchor_gateway_http_requests_total',
  () =>
    new Counter({
      name: 'streamanchor_gateway_http_requests_total',
      help: 'HTTP responses of the public API, by route pattern, method and status',
      labelNames: ['route', 'method', 'status'],
    }),
);

const turnCredentials = collectedMetric<IceServerProvider>({
  name: 'streamanchor_gateway_turn_credentials_issued_total',
  help: 'TURN credentials handed out with sessions (ICE_PROVIDER coturn or cloudflare)',
  type: 'counter',
  read: (provider) => provider.credentialsIssued,
});

const SESSIONS_ROUTE = '/v1/sessions';

/** A problem's code from its JSON body (`{"code": …}`), or `unknown`. */
function problemCode(payload: unknown): string {
  if (typeof payload !== 'string') return 'unknown';
  try {
    const code = (JSON.parse(payload) as { code?: unknown }).code;
    return typeof code === 'string' && /^[a-z_]{1,40}$/.test(code) ? code : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Counts the responses (by route pattern, never by URL: unmatched ones are `unmatched`) and
 * the sessions opened and refused. Returns the function that stops reading `iceServers`.
 */
export function installGatewayMetrics(
  fastify: FastifyInstance,
  { iceServers }: { iceServers: IceServerProvider },
): () => void {
  fastify.addHook('onSend', async (request, reply, payload) => {
    if (request.method === 'POST' && request.routeOptions.url === SESSIONS_ROUTE) {
      if (reply.statusCode === 201) sessionsCreated.inc();
      else if (reply.statusCode >= 400) sessionsRefused.inc({ code: problemCode(payload) });
    }
    return payload;
  });
  fastify.addHook('onResponse', async (request, reply) => {
    httpRequests.inc({
      route: request.routeOptions.url ?? 'unmatched',
      method: request.method,
      status: String(reply.statusCode),
    });
  });
  return turnCredentials(iceServers);
}
