import { STATUS_CODES } from 'node:http';
import {
  PROBLEM_BY_STATUS,
  PROBLEMS,
  Problem,
  type ProblemCode,
  problem,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProblemError } from './problem-error';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

interface RenderedProblem {
  body: Problem;
  headers: Record<string, string>;
}

/** Fastify's own error codes that map to a specific problem. */
const FASTIFY_CODES: Record<string, ProblemCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad_request',
  FST_ERR_VALIDATION: 'bad_request',
  FST_ERR_BAD_URL: 'bad_request',
  FST_ERR_MAX_PARAM_LENGTH: 'bad_request',
};

/**
 * Turns anything thrown while handling a request into a problem. Only ProblemErrors and
 * Fastify's client errors say what went wrong; everything else becomes internal_error with
 * no detail (stack traces and internal messages stay in the log).
 */
export function toProblem(
  error: unknown,
  request?: FastifyRequest,
): RenderedProblem & { internal: boolean } {
  if (error instanceof ProblemError) {
    const headers = { ...error.details.headers };
    return {
      body: problem(error.code, error.detail),
      headers: withChallenge(error.code, headers),
      internal: false,
    };
  }
  const fastifyError = error as Partial<FastifyError> | undefined;
  const status = fastifyError?.statusCode;
  const mapped = fastifyError?.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  const code =
    mapped ??
    (fastifyError?.validation ? 'bad_request' : undefined) ??
    (status !== undefined && status >= 400 && status < 500
      ? (PROBLEM_BY_STATUS[status] ?? 'bad_request')
      : undefined);
  if (code === undefined) return { body: problem('internal_error'), headers: {}, internal: true };
  return {
    body: problem(code, clientDetail(code, fastifyError, request)),
    headers: withChallenge(code, {}),
    internal: false,
  };
}

function clientDetail(
  code: ProblemCode,
  error: Partial<FastifyError> | undefined,
  request?: FastifyRequest,
): string | undefined {
  switch (code) {
    case 'unsupported_media_type': {
      const type = request?.headers['content-type'];
      return type
        ? `Content-Type "${truncate(type)}" is not accepted here`
        : 'A Content-Type is required';
    }
    case 'payload_too_large': {
      const limit = request?.routeOptions.bodyLimit;
      return limit ? `The body must not exceed ${limit} bytes` : undefined;
    }
    case 'bad_request':
      // Validation and parser messages describe the input, not the server.
      return error?.message ? truncate(error.message, 300) : undefined;
    default:
      return undefined;
  }
}

function withChallenge(code: ProblemCode, headers: Record<string, string>): Record<string, string> {
  if (PROBLEMS[code].status === 401 && !hasHeader(headers, 'www-authenticate')) {
    headers['WWW-Authenticate'] = 'Bearer';
  }
  return headers;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

function truncate(text: string, max = 100): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export function sendProblem(reply: FastifyReply, rendered: RenderedProblem): FastifyReply {
  // A pre-serialized string is sent as is (no response schema applies to it).
  return reply
    .code(rendered.body.status)
    .headers(rendered.headers)
    .type(PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(rendered.body));
}

/**
 * Remembers every route's method and URL pattern so the not-found handler can tell
 * "no such resource" (404) from "no such method on this resource" (405 + Allow).
 */
export function createRouteIndex() {
  const routes: { method: string; pattern: RegExp }[] = [];
  return {
    add(method: string | string[], url: string): void {
      // Wildcard routes (static files) would claim every path; they never make a 405.
      if (url.includes('*')) return;
      const pattern = new RegExp(
        `^${url
          .split('/')
          .map((segment) => (segment.startsWith(':') ? '[^/]+' : escapeRegExp(segment)))
          .join('/')}$`,
      );
      for (const m of Array.isArray(method) ? method : [method])
        routes.push({ method: m.toUpperCase(), pattern });
    },
    allowedMethods(path: string): string[] {
      const methods = new Set<string>();
      for (const route of routes) if (route.pattern.test(path)) methods.add(route.method);
      return [...methods].sort();
    },
  };
}
export type RouteIndex = ReturnType<typeof createRouteIndex>;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Installs the problem+json machinery on the ROOT instance (not as an encapsulated
 * plugin, so that every route, hook and plugin below inherits it): the error handler,
 * the not-found handler (404 or 405 with Allow) and the route index feeding it.
 */
export function installProblemHandling(app: FastifyInstance, { logger }: { logger: Logger }): void {
  const routeIndex = createRouteIndex();
  app.addHook('onRoute', (route) => routeIndex.add(route.method, route.url ?? ''));

  app.setErrorHandler((error, request, reply) => {
    const rendered = toProblem(error, request);
    if (rendered.internal) {
      logger.error({ err: error, reqId: request.id, url: request.url }, 'request failed');
    } else {
      request.log.debug(
        { code: rendered.body.code, detail: rendered.body.detail },
        'request refused',
      );
    }
    return sendProblem(reply, rendered);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? request.url;
    const allowed = routeIndex.allowedMethods(path);
    if (allowed.length > 0) {
      return sendProblem(reply, {
        body: problem(
          'method_not_allowed',
          `${request.method} is not allowed here; use ${allowed.join(', ')}`,
        ),
        headers: { Allow: allowed.join(', ') },
      });
    }
    return sendProblem(reply, { body: problem('not_found'), headers: {} });
  });
}

/** `frameworkErrors` option: malformed URLs and the like, raised before routing. */
export function frameworkErrors(
  error: FastifyError,
  _request: FastifyRequest,
  reply: FastifyReply,
): void {
  sendProblem(reply, toProblem(error));
}

/**
 * `clientErrorHandler` option: the HTTP parser rejected the request (malformed request
 * line or headers); answer a problem on the raw socket and close it.
 */
export function clientErrorHandler(
  error: NodeJS.ErrnoException,
  socket: import('node:net').Socket,
): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // A response already under way on this socket cannot be followed by another.
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const rendered = clientErrorProblem(error);
    const body = JSON.stringify(rendered);
    socket.write(
      `HTTP/1.1 ${rendered.status} ${STATUS_CODES[rendered.status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** The problem for an error Node's HTTP parser or server raised on a socket. */
export function clientErrorProblem(error: NodeJS.ErrnoException): Problem {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return problem('request_timeout', 'The request (headers and body) did not arrive in time');
    case 'HPE_HEADER_OVERFLOW':
      return problem('headers_too_large', 'The request headers exceed the server limit');
    default:
      return problem('bad_request', 'The HTTP request could not be parsed');
  }
}

/**
 * onRequest hook: HTTP/1.1 requires a Host header (RFC 9112 §3.2). Node refuses a missing
 * one with a bare 400; the server leaves it to this hook (requireHostHeader: false).
 */
export async function requireHost(request: FastifyRequest): Promise<void> {
  const raw = request.raw;
  if (raw.httpVersionMajor === 1 && raw.httpVersionMinor >= 1 && !raw.headers.host) {
    throw new ProblemError('bad_request', 'HTTP/1.1 requests must carry a Host header');
  }
}

/** Response schemas every route declares for its errors (the body is always a Problem). */
export const problemResponses = {
  '4xx': { ...Problem, description: 'application/problem+json' },
  '5xx': { ...Problem, description: 'application/problem+json' },
} as const;
