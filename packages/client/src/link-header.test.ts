import { describe, expect, it } from 'vitest';
import { parseIceServerLinks, parseLinkHeader } from './link-header';

describe('parseLinkHeader', () => {
  it('default: parses link-values with quoted and token parameters', () => {
    expect(
      parseLinkHeader(
        '<https://example.com/a>; rel="next"; title=first, <stun:s.example.net>;rel=ice-server',
      ),
    ).toEqual([
      { uri: 'https://example.com/a', params: { rel: 'next', title: 'first' } },
      { uri: 'stun:s.example.net', params: { rel: 'ice-server' } },
    ]);
  });

  it('behavior: commas and semicolons inside quotes and brackets do not split', () => {
    expect(
      parseLinkHeader(
        '<turn:t.example.net?transport=udp>; rel="ice-server"; credential="a,b;c\\"d"',
      ),
    ).toEqual([
      {
        uri: 'turn:t.example.net?transport=udp',
        params: { rel: 'ice-server', credential: 'a,b;c"d' },
      },
    ]);
  });

  it('behavior: parameter names are case-insensitive and the first occurrence wins', () => {
    expect(parseLinkHeader('<stun:a>; REL="ice-server"; rel="other"')).toEqual([
      { uri: 'stun:a', params: { rel: 'ice-server' } },
    ]);
  });

  it('behavior: accepts several header values and empty list elements', () => {
    expect(
      parseLinkHeader(['<stun:a>; rel="ice-server"', ' , ,<stun:b>; rel="ice-server"']),
    ).toHaveLength(2);
    expect(parseLinkHeader(null)).toEqual([]);
    expect(parseLinkHeader('')).toEqual([]);
  });

  it('error: skips malformed elements and keeps the good ones', () => {
    expect(
      parseLinkHeader(
        'garbage; rel=x, <stun:ok>; rel="ice-server", <stun:bad> junk; rel=y, <unterminated',
      ),
    ).toEqual([{ uri: 'stun:ok', params: { rel: 'ice-server' } }]);
  });
});

describe('parseIceServerLinks', () => {
  it('default: reads RFC 9725 §4.6 ice-server links with credentials', () => {
    const header = [
      '<stun:stun.example.net>; rel="ice-server"',
      '<turn:turn.example.net?transport=udp>; rel="ice-server"; username="user"; credential="myPassword"; credential-type="password"',
      '<turns:turn.example.net:443?transport=tcp>; rel="ice-server"; username="1700000000:alice"; credential="c2VjcmV0PQ=="',
    ].join(', ');
    expect(parseIceServerLinks(header)).toEqual([
      { urls: 'stun:stun.example.net' },
      { urls: 'turn:turn.example.net?transport=udp', username: 'user', credential: 'myPassword' },
      {
        urls: 'turns:turn.example.net:443?transport=tcp',
        username: '1700000000:alice',
        credential: 'c2VjcmV0PQ==',
      },
    ]);
  });

  it('behavior: ignores other relations and non-ICE schemes; rel may list several types', () => {
    const header =
      '<https://example.com>; rel="ice-server", <stun:a>; rel="preconnect", <stun:b>; rel="other ICE-Server"';
    expect(parseIceServerLinks(header)).toEqual([{ urls: 'stun:b' }]);
  });

  it('error: drops TURN entries without credentials and unknown credential types', () => {
    const header =
      '<turn:a>; rel="ice-server", <turn:b>; rel="ice-server"; username="u", <turn:c>; rel="ice-server"; username="u"; credential="t"; credential-type="oauth"';
    expect(parseIceServerLinks(header)).toEqual([]);
  });

  it('behavior: no header gives no servers', () => {
    expect(parseIceServerLinks(null)).toEqual([]);
  });
});
