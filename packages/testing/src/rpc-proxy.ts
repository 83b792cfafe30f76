import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP JSON-RPC proxy in front of anvil, for fault tests: every service gets its own URL
 * (`urlFor('indexer')` → `http://127.0.0.1:PORT/indexer`), so the proxy knows who called, and
 * hooks can act (for instance fire `anvil_reorg`) between any two calls of a service. A hook
 * awaited in the `response` phase runs after upstream answered and before the caller sees the
 * answer: `await proxy.reorg(3)` there lands a reorg exactly "after eth_getLogs answered and
 * before the next call". JSON-RPC batch arrays are forwarded as one upstream request; hooks
 * see each call of the batch.
 */

export type RpcPhase = 'request' | 'response';

export interface RpcCall {
  /** The path segment the caller used (`/indexer` → `indexer`; `/` → `default`). */
  client: string;
  method: string;
  params: unknown;
  phase: RpcPhase;
  /** The upstream answer (`response` phase only): `result` or `error`. */
  response?: { result?: unknown; error?: unknown };
}

export type RpcHook = (call: RpcCall) => void | Promise<void>;

export interface RpcCallRecord {
  client: string;
  method: string;
  /** ms since the proxy started. */
  at: number;
}

export interface ReorgRecord {
  depth: number;
  /** What triggered it: `client:method` of the call it followed, or `manual`. */
  after: string;
  headBefore: bigint;
  at: number;
}

export interface RandomReorgOptions {
  /** Chance of a reorg after each matching response (0–1). */
  probability: number;
  /** Inclusive depth range; each reorg draws a depth uniformly from it. Default [1, 10]. */
  depths?: [number, number];
  /** Stop after this many random reorgs. Default unlimited. */
  maxCount?: number;
  /** At least this long between two random reorgs (ms). Default 0. */
  minSpacingMs?: number;
  /** Only after calls of these clients (default: every client). */
  clients?: readonly string[];
  /** Only after calls of these methods (default: every method). */
  methods?: readonly string[];
  /** A source of randomness in [0, 1) (default Math.random), for reproducible runs. */
  random?: () => number;
}

export interface StartRpcProxyOptions {
  /** The JSON-RPC URL to forward to (anvil). */
  upstream: string;
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /**
   * Never reorg this block or any below it (e.g. the contract's deployment block): a reorg
   * whose depth would reach it is made shallower, or skipped when the chain is too short.
   */
  protectBlock?: number | bigint;
  /** Keep at most this many entries in `calls` (oldest dropped). Default 100,000. */
  maxCallRecords?: number;
}

export interface RpcProxy {
  url: string;
  /** The URL a given client uses (`http://host:port/<client>`). */
  urlFor(client: string): string;
  /** Every call forwarded, in arrival order (one entry per call of a batch). */
  readonly calls: RpcCallRecord[];
  /** Every reorg the proxy fired. */
  readonly reorgs: ReorgRecord[];
  /** Adds a hook; returns a function that removes it. */
  onCall(hook: RpcHook): () => void;
  /**
   * `anvil_reorg [depth, []]` upstream (serialized with other reorgs). The reorged blocks'
   * transactions are dropped. Resolves to the depth used (clamped by `protectBlock`), or 0
   * when the chain was too short to reorg at all.
   */
  reorg(depth: number, after?: string): Promise<number>;
  /** Starts firing reorgs at random points; returns a function that stops it. */
  random(options: RandomReorgOptions): () => void;
  /** A raw call upstream, not seen by hooks nor recorded. */
  upstreamRequest(method: string, params?: unknown[]): Promise<unknown>;
  stop(): Promise<void>;
}

interface JsonRpcRequest {
  jsonrpc?: string;
  id?: unknown;
  method?: string;
  params?: unknown;
}

interface JsonRpcResponse {
  id?: unknown;
  result?: unknown;
  error?: unknown;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startRpcProxy(options: StartRpcProxyOptions): Promise<RpcProxy> {
  const host = options.host ?? '127.0.0.1';
  const upstream = options.upstream;
  const maxCallRecords = options.maxCallRecords ?? 100_000;
  const protect = options.protectBlock === undefined ? undefined : BigInt(options.protectBlock);
  const started = Date.now();
  const hooks = new Set<RpcHook>();
  const calls: RpcCallRecord[] = [];
  const reorgs: ReorgRecord[] = [];
  let upstreamId = 0;
  let reorgChain: Promise<unknown> = Promise.resolve();

  async function upstreamRequest(method: string, params: unknown[] = []): Promise<unknown> {
    const response = await fetch(upstream, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: `proxy-${++upstreamId}`, method, params }),
    });
    const body = (await response.json()) as JsonRpcResponse;
    if (body.error !== undefined) {
      throw new Error(`upstream ${method} failed: ${JSON.stringify(body.error)}`);
    }
    return body.result;
  }

  function reorg(depth: number, after = 'manual'): Promise<number> {
    const run = async (): Promise<number> => {
      const head = BigInt((await upstreamRequest('eth_blockNumber')) as string);
      let used = Math.max(0, Math.floor(depth));
      // anvil cannot reorg the genesis block; and nothing at or below protectBlock may go.
      const floor = protect ?? 0n;
      const room = head - floor;
      if (room <= 0n) return 0;
      if (BigInt(used) > room) used = Number(room);
      if (used === 0) return 0;
      await upstreamRequest('anvil_reorg', [used, []]);
      reorgs.push({ depth: used, after, headBefore: head, at: Date.now() - started });
      return used;
    };
    const result = reorgChain.then(run, run);
    reorgChain = result.catch(() => {});
    return result;
  }

  async function runHooks(call: RpcCall): Promise<void> {
    for (const hook of [...hooks]) await hook(call);
  }

  function record(client: string, method: string): void {
    calls.push({ client, method, at: Date.now() - started });
    if (calls.length > maxCallRecords) calls.splice(0, calls.length - maxCallRecords);
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const client = path.replace(/^\/+|\/+$/g, '') || 'default';
    if (request.method !== 'POST') {
      response.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const text = await readBody(request);
    let parsed: JsonRpcRequest | JsonRpcRequest[];
    try {
      parsed = JSON.parse(text) as JsonRpcRequest | JsonRpcRequest[];
    } catch {
      response.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          jsonrpc: '2.0',
          id: null,
          error: { code: -32700, message: 'parse error' },
        }),
      );
      return;
    }
    const batch = Array.isArray(parsed);
    const requests: JsonRpcRequest[] = Array.isArray(parsed) ? parsed : [parsed];
    for (const item of requests) {
      const method = String(item?.method ?? '');
      record(client, method);
      await runHooks({ client, method, params: item?.params, phase: 'request' });
    }
    const upstreamResponse = await fetch(upstream, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: text,
    });
    const answerText = await upstreamResponse.text();
    let answers: JsonRpcResponse[] = [];
    try {
      const answer = JSON.parse(answerText) as JsonRpcResponse | JsonRpcResponse[];
      answers = Array.isArray(answer) ? answer : [answer];
    } catch {
      // Not JSON: pass it on as it came; hooks see no response.
    }
    for (const item of requests) {
      const method = String(item?.method ?? '');
      const answer = answers.find((a) => a.id === item?.id) ?? (batch ? undefined : answers[0]);
      await runHooks({
        client,
        method,
        params: item?.params,
        phase: 'response',
        response: answer ? { result: answer.result, error: answer.error } : undefined,
      });
    }
    response
      .writeHead(upstreamResponse.status, {
        'content-type': upstreamResponse.headers.get('content-type') ?? 'application/json',
      })
      .end(answerText);
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: Error) => {
      if (!response.headersSent) {
        response.writeHead(502, { 'content-type': 'application/json' });
      }
      response.end(
        JSON.stringify({
          jsonrpc: '2.0',
          id: null,
          error: { code: -32603, message: `rpc-proxy: ${error.message}` },
        }),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host}:${port}`;

  return {
    url,
    urlFor: (client) => `${url}/${encodeURIComponent(client)}`,
    calls,
    reorgs,
    onCall(hook) {
      hooks.add(hook);
      return () => void hooks.delete(hook);
    },
    reorg,
    random(random) {
      const [minDepth, maxDepth] = random.depths ?? [1, 10];
      const draw = random.random ?? Math.random;
      let fired = 0;
      let last = Number.NEGATIVE_INFINITY;
      const hook: RpcHook = async (call) => {
        if (call.phase !== 'response') return;
        if (random.clients && !random.clients.includes(call.client)) return;
        if (random.methods && !random.methods.includes(call.method)) return;
        if (random.maxCount !== undefined && fired >= random.maxCount) return;
        if (Date.now() - last < (random.minSpacingMs ?? 0)) return;
        if (draw() >= random.probability) return;
        fired += 1;
        last = Date.now();
        const depth = minDepth + Math.floor(draw() * (maxDepth - minDepth + 1));
        const used = await reorg(depth, `${call.client}:${call.method}`);
        if (used === 0) fired -= 1;
      };
      hooks.add(hook);
      return () => void hooks.delete(hook);
    },
    upstreamRequest,
    async stop() {
      hooks.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
