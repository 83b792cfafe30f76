import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { contentHashOf, leafHash, problem, type Receipt } from '@streamanchor/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectError, SessionRequestError } from './errors';
import { fetchReceipt, receiptUrl } from './signaling';

// A real HTTP server on loopback stands in for the gateway (whose route has its own tests
// in apps/signaling-gateway/src/records).
let server: Server | undefined;
const seen: { method: string; url: string; headers: IncomingMessage['headers'] }[] = [];

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  seen.length = 0;
  const running = server;
  server = undefined;
  if (!running) return;
  running.closeAllConnections();
  await new Promise((resolve) => running.close(resolve));
});

const RECORD_ID = `0x${'a1'.repeat(32)}` as const;
const hex32 = (byte: string) => `0x${byte.repeat(32)}` as `0x${string}`;
const leaf = {
  recordId: RECORD_ID,
  topic: 'demo',
  subject: 'alice',
  contentHash: contentHashOf('{"n":1}'),
  acceptedAt: 1_764_000_000_000,
};
const RECEIPT: Receipt = {
  status: 'final',
  confirmations: 64,
  revision: 2,
  ...leaf,
  leafHash: leafHash(leaf),
  leafIndex: 0,
  proof: [],
  batchId: hex32('b2'),
  merkleRoot: leafHash(leaf),
  recordCount: 1,
  chainId: 31337,
  contract: '0x5fbdb2315678afecb367f032d93f642f64180aa3',
  txHash: hex32('c3'),
  blockNumber: 12,
  blockHash: hex32('d4'),
  logIndex: 0,
};

describe('fetchReceipt', () => {
  it('default: GETs the record receipt with the bearer token and returns it', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(RECEIPT));
    });
    const receipt = await fetchReceipt({ baseUrl: `${base}/`, token: 'tok', recordId: RECORD_ID });
    expect(receipt).toEqual(RECEIPT);
    expect(seen[0]).toMatchObject({ method: 'GET', url: `/v1/records/${RECORD_ID}/receipt` });
    expect(seen[0]!.headers.authorization).toBe('Bearer tok');
    expect(receiptUrl('https://gw.example/', RECORD_ID)).toBe(
      `https://gw.example/v1/records/${RECORD_ID}/receipt`,
    );
  });

  it('behavior: a pending record is a SessionRequestError with code receipt_pending', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/problem+json', 'retry-after': '5' });
      res.end(JSON.stringify(problem('receipt_pending', 'not anchored yet')));
    });
    const error = await fetchReceipt({ baseUrl: base, token: 'tok', recordId: RECORD_ID }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SessionRequestError);
    expect(error).toMatchObject({ status: 404, code: 'receipt_pending' });
  });

  it('error: problems keep their code; an unusable 200 or no gateway is a ConnectError', async () => {
    let answer: () => [number, string, string] = () => [
      404,
      'application/problem+json',
      JSON.stringify(problem('record_not_found')),
    ];
    const base = await serve((_req, res) => {
      const [status, type, body] = answer();
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    });
    const call = () =>
      fetchReceipt({ baseUrl: base, token: 'tok', recordId: RECORD_ID }).catch((e: unknown) => e);
    expect(await call()).toMatchObject({ status: 404, code: 'record_not_found' });

    answer = () => [
      503,
      'application/problem+json',
      JSON.stringify(problem('indexer_unavailable')),
    ];
    expect(await call()).toMatchObject({ status: 503, code: 'indexer_unavailable' });

    answer = () => [200, 'application/json', JSON.stringify({ ...RECEIPT, recordId: hex32('ff') })];
    expect(await call()).toBeInstanceOf(ConnectError);
    answer = () => [200, 'text/html', '<html>'];
    expect(await call()).toBeInstanceOf(ConnectError);

    const unreachable = await fetchReceipt({
      baseUrl: 'http://127.0.0.1:9',
      token: 'tok',
      recordId: RECORD_ID,
    }).catch((e: unknown) => e);
    expect(unreachable).toBeInstanceOf(ConnectError);
  });
});
