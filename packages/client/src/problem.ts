import { PROBLEM_BY_STATUS, PROBLEMS } from '@streamanchor/protocol';
import { SessionRequestError } from './errors';

/**
 * Builds a SessionRequestError from a failed response's status, Content-Type and body.
 * An application/problem+json body (RFC 9457) supplies code, title and detail; anything
 * else falls back to the HTTP status (and the body text, shortened, as detail).
 */
export function parseProblem(
  status: number,
  contentType: string | null,
  body: string,
): SessionRequestError {
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType === 'application/problem+json' || mediaType === 'application/json') {
    try {
      const value: unknown = JSON.parse(body);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const fields = value as Record<string, unknown>;
        const str = (key: string) =>
          typeof fields[key] === 'string' ? (fields[key] as string) : undefined;
        const type = str('type');
        const code = str('code') ?? codeFromType(type) ?? codeFromStatus(status);
        return new SessionRequestError({
          status: typeof fields.status === 'number' ? fields.status : status,
          code,
          title: str('title') ?? defaultTitle(code, status),
          ...(str('detail') === undefined ? {} : { detail: str('detail') }),
          ...(type === undefined ? {} : { type }),
        });
      }
    } catch {
      // Not JSON after all: fall through to the status-based error.
    }
  }
  const code = codeFromStatus(status);
  const text = body.trim();
  return new SessionRequestError({
    status,
    code,
    title: defaultTitle(code, status),
    ...(text ? { detail: text.length > 300 ? `${text.slice(0, 300)}…` : text } : {}),
  });
}

/** Reads a failed fetch Response into a SessionRequestError. */
export async function problemFromResponse(response: Response): Promise<SessionRequestError> {
  let body = '';
  try {
    body = await response.text();
  } catch {
    // The body could not be read; the status alone must do.
  }
  return parseProblem(response.status, response.headers.get('content-type'), body);
}

function codeFromType(type: string | undefined): string | undefined {
  const match = type?.match(/^urn:streamanchor:problem:([a-z_]+)$/);
  return match?.[1];
}

function codeFromStatus(status: number): string {
  return PROBLEM_BY_STATUS[status] ?? 'unknown';
}

function defaultTitle(code: string, status: number): string {
  return code in PROBLEMS ? PROBLEMS[code as keyof typeof PROBLEMS].title : `HTTP ${status}`;
}
