import { problem } from '@streamanchor/protocol';
import { describe, expect, it } from 'vitest';
import { SessionRequestError } from './errors';
import { parseProblem, problemFromResponse } from './problem';

describe('parseProblem', () => {
  it('default: reads an application/problem+json body', () => {
    const body = JSON.stringify(problem('unauthorized', 'token expired at 2026-01-01T00:00:00Z'));
    const error = parseProblem(401, 'application/problem+json; charset=utf-8', body);
    expect(error).toBeInstanceOf(SessionRequestError);
    expect(error).toMatchObject({
      status: 401,
      code: 'unauthorized',
      title: 'A valid bearer token is required.',
      detail: 'token expired at 2026-01-01T00:00:00Z',
      type: 'urn:streamanchor:problem:unauthorized',
    });
    expect(error.shortMessage).toContain('401 unauthorized');
    expect(error.details).toBe('token expired at 2026-01-01T00:00:00Z');
  });

  it('behavior: takes the code from the type URI when `code` is missing', () => {
    const error = parseProblem(
      503,
      'application/problem+json',
      '{"type":"urn:streamanchor:problem:no_relay_available","title":"No relay","status":503}',
    );
    expect(error).toMatchObject({ status: 503, code: 'no_relay_available', title: 'No relay' });
  });

  it('error: falls back to the status for non-problem bodies', () => {
    expect(parseProblem(502, 'text/html', '<html>Bad gateway</html>')).toMatchObject({
      status: 502,
      code: 'unknown',
      title: 'HTTP 502',
      detail: '<html>Bad gateway</html>',
    });
    expect(parseProblem(404, 'application/problem+json', '{not json')).toMatchObject({
      status: 404,
      code: 'not_found',
      title: 'No such resource.',
    });
  });

  it('behavior: reads a fetch Response', async () => {
    const response = new Response(
      JSON.stringify(problem('invalid_sdp', 'no m=application section')),
      {
        status: 400,
        headers: { 'content-type': 'application/problem+json' },
      },
    );
    await expect(problemFromResponse(response)).resolves.toMatchObject({
      status: 400,
      code: 'invalid_sdp',
    });
  });
});
