import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { describe, expect, test } from 'vitest';
import {
  canonicalJson,
  canonicalPayload,
  contentHashOf,
  LEAF_ENCODING,
  type LeafFields,
  leafHash,
  leafValue,
  NonCanonicalPayloadError,
  utf8Length,
} from './record';

const fields: LeafFields = {
  recordId: `0x${'11'.repeat(32)}`,
  topic: 'demo',
  subject: 'alice',
  contentHash: `0x${'22'.repeat(32)}`,
  acceptedAt: 1_732_400_000_000,
};

describe('canonicalPayload', () => {
  test('default: keys sorted, no whitespace (RFC 8785)', () => {
    expect(canonicalPayload({ b: 1, a: [true, null, 'x'], c: { z: 1, y: 2 } })).toBe(
      '{"a":[true,null,"x"],"b":1,"c":{"y":2,"z":1}}',
    );
  });

  test('behavior: numbers use the ECMAScript shortest form', () => {
    expect(canonicalPayload([1.0, 1e21, 0.000001, -0, 100])).toBe('[1,1e+21,0.000001,0,100]');
  });

  test('behavior: RFC 8785 sorts keys by UTF-16 code units', () => {
    expect(canonicalPayload({ '\u20ac': 1, '\r': 2, '\ud83d\ude00': 3, '1': 4 })).toBe(
      '{"\\r":2,"1":4,"\u20ac":1,"\ud83d\ude00":3}',
    );
  });

  test('error: lone surrogate', () => {
    expect(() => canonicalPayload({ a: '\ud800' })).toThrow(NonCanonicalPayloadError);
  });

  test('error: no JSON form', () => {
    expect(() => canonicalPayload(undefined)).toThrow(NonCanonicalPayloadError);
  });
});

describe('canonicalJson', () => {
  const texts = [
    '{"unit":"C","temp":21.5,"sensor":"kitchen"}',
    '{"b":1,"a":[true,null,"x"],"c":{"z":1,"y":2}}',
    '[1.0,1e21,0.000001,-0,100,-1.5e-7,123456789012345680000]',
    '{"\\u20ac":1,"\\r":2,"\\ud83d\\ude00":3,"1":4,"10":5,"2":6,"":7,"\u00e9":8}',
    '"a \\u0000 \\"quoted\\" \\\\ \\u001f \\u2028 é 😀"',
    '{"k\\u0000":"a\\u0000b","list":["\\u0000"],"__proto__":{"x":[]},"toJSON":"no"}',
    '[[],{},[[[{"deep":[1,[2,[3]]]}]]],"",0,false]',
    'null',
    '12',
    'true',
  ];

  test('default: the same text as canonicalPayload for what JSON.parse returns', () => {
    for (const text of texts) {
      const value: unknown = JSON.parse(text);
      expect(canonicalJson(value)).toBe(canonicalPayload(value));
    }
  });

  test('behavior: members in any order, small objects and large, come out in the order canonicalPayload gives', () => {
    const names = [
      'b',
      'a',
      'aa',
      'A',
      '10',
      '9',
      '\u00e9',
      '\ud83d\ude00',
      '\uff61',
      '',
      'z',
      'é0',
    ];
    let seed = 3;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return Math.floor((seed / 2 ** 31) * n);
    };
    for (let n = 0; n < 300; n++) {
      // 0 to 40 members: by insertion up to 16, the built-in sort beyond.
      const count = random(41);
      const members = Array.from(
        { length: count },
        (_, i) => `"${names[random(names.length)]}${i}":${i}`,
      );
      const value: unknown = JSON.parse(`{${members.join(',')}}`);
      expect(canonicalJson(value)).toBe(canonicalPayload(value));
    }
  });

  test('behavior: counts the members of every object it met', () => {
    const count = (text: string) => {
      const counter = { members: 0 };
      canonicalJson(JSON.parse(text), counter);
      return counter.members;
    };
    expect(count('{"a":{"b":1,"c":[{"d":2},{}]},"e":3}')).toBe(5);
    expect(count('[1,2,3]')).toBe(0);
    // JSON.parse keeps one member of a name: the count tells a duplicate.
    expect(count('{"a":1,"a":2}')).toBe(1);
  });

  test('error: lone surrogates (in values or names) and non-finite numbers', () => {
    for (const text of ['"\\ud800"', '{"\\udc00":1}', '[1e400]', '{"a":-1e999}']) {
      expect(() => canonicalJson(JSON.parse(text))).toThrow(NonCanonicalPayloadError);
    }
  });
});

describe('canonicalPayload and U+0000', () => {
  test('behavior: a NUL in strings or names is escaped; the canonical text holds no raw U+0000', () => {
    const text = canonicalPayload({ 'k\u0000': 'a\u0000b', list: ['\u0000'] });
    expect(text).toBe('{"k\\u0000":"a\\u0000b","list":["\\u0000"]}');
    expect(text.includes('\u0000')).toBe(false);
    expect(JSON.parse(text)).toEqual({ 'k\u0000': 'a\u0000b', list: ['\u0000'] });
  });
});

describe('contentHashOf', () => {
  test('default: keccak-256 of the UTF-8 bytes', () => {
    // keccak256("") and keccak256("{}") are well-known values.
    expect(contentHashOf('')).toBe(
      '0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470',
    );
    expect(contentHashOf('{}')).toBe(
      '0xb48d38f93eaa084033fc5970bf96e559c33c4cdc07d889ab00b4d63f9590739d',
    );
  });

  test('behavior: equal JSON values hash equally whatever the key order', () => {
    expect(contentHashOf(canonicalPayload({ a: 1, b: 2 }))).toBe(
      contentHashOf(canonicalPayload({ b: 2, a: 1 })),
    );
  });
});

describe('leafHash', () => {
  test('default: equals the StandardMerkleTree leaf for the same values', () => {
    const tree = StandardMerkleTree.of([leafValue(fields)], [...LEAF_ENCODING]);
    expect(leafHash(fields)).toBe(tree.leafHash(leafValue(fields)));
  });

  test('behavior: every committed field changes the leaf', () => {
    const base = leafHash(fields);
    expect(leafHash({ ...fields, recordId: `0x${'12'.repeat(32)}` })).not.toBe(base);
    expect(leafHash({ ...fields, topic: 'other' })).not.toBe(base);
    expect(leafHash({ ...fields, subject: 'bob' })).not.toBe(base);
    expect(leafHash({ ...fields, contentHash: `0x${'23'.repeat(32)}` })).not.toBe(base);
    expect(leafHash({ ...fields, acceptedAt: fields.acceptedAt + 1 })).not.toBe(base);
  });
});

describe('utf8Length', () => {
  test('default: agrees with Buffer.byteLength', () => {
    for (const text of ['', 'abc', 'é', '€', '😀', 'a\ud800b', '\udc00', 'x'.repeat(1000)]) {
      expect(utf8Length(text)).toBe(Buffer.byteLength(text, 'utf8'));
    }
  });
});
