import { createPublicClient, http } from 'viem';
import { afterEach, describe, expect, it } from 'vitest';
import { type Anvil, startAnvil } from './anvil';
import { type RpcProxy, startRpcProxy } from './rpc-proxy';

describe('startRpcProxy (against a real anvil)', () => {
  let anvil: Anvil | undefined;
  let proxy: RpcProxy | undefined;
  afterEach(async () => {
    await proxy?.stop();
    await anvil?.stop();
    proxy = undefined;
    anvil = undefined;
  });

  async function start(): Promise<{ anvil: Anvil; proxy: RpcProxy }> {
    anvil = await startAnvil();
    proxy = await startRpcProxy({ upstream: anvil.rpcUrl });
    return { anvil, proxy };
  }

  it('default: forwards calls and records which client made them', async () => {
    const { anvil, proxy } = await start();
    const viaProxy = createPublicClient({ transport: http(proxy.urlFor('indexer')) });
    const direct = createPublicClient({ transport: http(anvil.rpcUrl) });
    await direct.request({ method: 'anvil_mine' as never, params: [3] as never });
    expect(await viaProxy.getChainId()).toBe(31337);
    expect(await viaProxy.getBlockNumber({ cacheTime: 0 })).toBe(3n);
    const block = await viaProxy.getBlock({ blockNumber: 2n });
    expect(block.hash).toBe((await direct.getBlock({ blockNumber: 2n })).hash);
    expect(proxy.calls.map((c) => `${c.client} ${c.method}`)).toEqual([
      'indexer eth_chainId',
      'indexer eth_blockNumber',
      'indexer eth_getBlockByNumber',
    ]);
  });

  it('behavior: a hook fires a reorg between two calls of one client', async () => {
    const { anvil, proxy } = await start();
    const direct = createPublicClient({ transport: http(anvil.rpcUrl) });
    await direct.request({ method: 'anvil_mine' as never, params: [10] as never });
    const viaProxy = createPublicClient({ transport: http(proxy.urlFor('indexer')) });
    const seen: string[] = [];
    proxy.onCall(async (call) => {
      seen.push(`${call.phase} ${call.client} ${call.method}`);
      // After the first block read answered, before the caller gets the answer.
      if (
        call.phase === 'response' &&
        call.method === 'eth_getBlockByNumber' &&
        proxy.reorgs.length === 0
      )
        expect(await proxy.reorg(3, `${call.client}:${call.method}`)).toBe(3);
    });
    const before = await viaProxy.getBlock({ blockNumber: 9n });
    const after = await viaProxy.getBlock({ blockNumber: 9n });
    expect(after.hash).not.toBe(before.hash);
    expect(after.number).toBe(9n);
    // Blocks below the reorg depth stay.
    expect((await viaProxy.getBlock({ blockNumber: 7n })).hash).toBe(
      (await direct.getBlock({ blockNumber: 7n })).hash,
    );
    expect(proxy.reorgs).toEqual([
      expect.objectContaining({ depth: 3, after: 'indexer:eth_getBlockByNumber', headBefore: 10n }),
    ]);
    expect(seen.slice(0, 4)).toEqual([
      'request indexer eth_getBlockByNumber',
      'response indexer eth_getBlockByNumber',
      'request indexer eth_getBlockByNumber',
      'response indexer eth_getBlockByNumber',
    ]);
  });

  it('behavior: JSON-RPC batch arrays are forwarded and each call is seen', async () => {
    const { proxy } = await start();
    const methods: string[] = [];
    proxy.onCall((call) => {
      if (call.phase === 'response')
        methods.push(`${call.method}=${JSON.stringify(call.response?.result)}`);
    });
    const response = await fetch(proxy.urlFor('writer'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] },
        { jsonrpc: '2.0', id: 2, method: 'eth_blockNumber', params: [] },
      ]),
    });
    const body = (await response.json()) as { id: number; result: string }[];
    expect(body.map((b) => [b.id, b.result]).sort()).toEqual([
      [1, '0x7a69'],
      [2, '0x0'],
    ]);
    expect(methods.sort()).toEqual(['eth_blockNumber="0x0"', 'eth_chainId="0x7a69"']);
    expect(proxy.calls.map((c) => c.client)).toEqual(['writer', 'writer']);

    // viem's own batching goes through too.
    const batched = createPublicClient({
      transport: http(proxy.urlFor('writer'), { batch: true }),
    });
    const [id, head] = await Promise.all([
      batched.getChainId(),
      batched.getBlockNumber({ cacheTime: 0 }),
    ]);
    expect([id, head]).toEqual([31337, 0n]);
  });

  it('behavior: protectBlock keeps a reorg from reaching a protected block; random mode fires within its bounds', async () => {
    anvil = await startAnvil();
    proxy = await startRpcProxy({ upstream: anvil.rpcUrl, protectBlock: 4 });
    const direct = createPublicClient({ transport: http(anvil.rpcUrl) });
    await direct.request({ method: 'anvil_mine' as never, params: [6] as never });
    const protectedHash = (await direct.getBlock({ blockNumber: 4n })).hash;
    expect(await proxy.reorg(10)).toBe(2);
    expect((await direct.getBlock({ blockNumber: 4n })).hash).toBe(protectedHash);

    await direct.request({ method: 'anvil_mine' as never, params: [20] as never });
    const stopRandom = proxy.random({
      probability: 1,
      depths: [1, 3],
      maxCount: 2,
      clients: ['indexer'],
    });
    const viaProxy = createPublicClient({ transport: http(proxy.urlFor('indexer')) });
    const other = createPublicClient({ transport: http(proxy.urlFor('writer')) });
    await other.getBlockNumber({ cacheTime: 0 });
    expect(proxy.reorgs).toHaveLength(1);
    for (let i = 0; i < 4; i++) await viaProxy.getBlockNumber({ cacheTime: 0 });
    stopRandom();
    expect(proxy.reorgs).toHaveLength(3);
    for (const r of proxy.reorgs.slice(1)) {
      expect(r.after).toBe('indexer:eth_blockNumber');
      expect(r.depth).toBeGreaterThanOrEqual(1);
      expect(r.depth).toBeLessThanOrEqual(3);
    }
  });

  it('error: an upstream that is down answers a JSON-RPC error, not a hang', async () => {
    anvil = await startAnvil();
    proxy = await startRpcProxy({ upstream: anvil.rpcUrl });
    await anvil.stop();
    const response = await fetch(proxy.urlFor('writer'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
    });
    expect(response.status).toBe(502);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
      /rpc-proxy/,
    );
  });
});
