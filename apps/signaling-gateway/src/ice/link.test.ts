import { describe, expect, it } from 'vitest';
import { iceServerLinks } from './link';
import { createNoIceServers, createStaticProvider } from './providers';

describe('iceServerLinks', () => {
  it('default: one RFC 9725 §4.6 link per URL, credentials on TURN', () => {
    expect(
      iceServerLinks([
        { urls: ['stun:stun.example.net:3478'] },
        {
          urls: ['turn:turn.example.net:3478?transport=udp', 'turns:turn.example.net:5349'],
          username: '1893499200:alice',
          credential: 'a+b/c=',
        },
      ]),
    ).toEqual([
      '<stun:stun.example.net:3478>; rel="ice-server"',
      '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="1893499200:alice"; credential="a+b/c="; credential-type="password"',
      '<turns:turn.example.net:5349>; rel="ice-server"; username="1893499200:alice"; credential="a+b/c="; credential-type="password"',
    ]);
  });

  it('behavior: STUN URLs listed with TURN ones get no credentials', () => {
    expect(
      iceServerLinks([
        { urls: ['stun:s.example', 'turn:t.example'], username: 'u', credential: 'c' },
      ]),
    ).toEqual([
      '<stun:s.example>; rel="ice-server"',
      '<turn:t.example>; rel="ice-server"; username="u"; credential="c"; credential-type="password"',
    ]);
  });

  it('behavior: quotes and backslashes are escaped', () => {
    expect(
      iceServerLinks([{ urls: ['turn:t.example'], username: 'a"b', credential: 'c\\d' }]),
    ).toEqual([
      '<turn:t.example>; rel="ice-server"; username="a\\"b"; credential="c\\\\d"; credential-type="password"',
    ]);
  });

  it('error: what cannot be written into a header, and TURN without credentials, is left out', () => {
    const skipped: string[] = [];
    const links = iceServerLinks(
      [
        { urls: ['turn:no-credentials.example'] },
        { urls: ['https://not-ice.example', 'stun:a b', 'stun:x>y'] },
        { urls: ['turn:t.example'], username: 'line\r\nbreak', credential: 'x' },
        { urls: ['turn:t.example'], username: 'ålice', credential: 'x' },
        { urls: ['stun:ok.example'] },
      ],
      (url, reason) => skipped.push(`${url}: ${reason}`),
    );
    expect(links).toEqual(['<stun:ok.example>; rel="ice-server"']);
    expect(skipped).toHaveLength(6);
    expect(skipped[0]).toMatch(/^turn:no-credentials\.example: a TURN server without username/);
  });
});

describe('static and none providers', () => {
  it('default: the static list is served as is, a copy each time, with no credentials issued', async () => {
    const provider = createStaticProvider([{ urls: ['stun:stun.example.net:3478'] }]);
    const first = await provider.iceServers({ subject: 'alice' });
    first[0]!.urls.push('stun:mutated');
    expect(await provider.iceServers({ subject: 'bob' })).toEqual([
      { urls: ['stun:stun.example.net:3478'] },
    ]);
    expect(provider.credentialsIssued).toBe(0);
    expect(await createNoIceServers().iceServers({ subject: 'alice' })).toEqual([]);
  });
});
