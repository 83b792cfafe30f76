import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger';
import { registry as defaultRegistry, ensureDefaultMetrics, type Registry } from './metrics';

/** A readiness check: resolves when the dependency answers, throws (or rejects) otherwise. */
export type ReadinessCheck = () => unknown;

export interface OpsServerOptions {
  /** OPS_HOST. */
  host: string;
  /** OPS_PORT; 0 = no ops server (start() and stop() do nothing). */
  port: number;
  /** Default: prom-client's default registry (with the process_ and nodejs_ metrics). */
  registry?: Registry;
  /** By name (`redis`, `database`, `rpc`, …); all must pass for /readyz to answer 200. */
  checks?: Readonly<Record<string, ReadinessCheck>>;
  logger: Logger;
  /** Longest one check may take before it counts as failed (ms). Default 2000. */
  checkTimeoutMs?: number;
}

export interface OpsServer {
  /** Listens on host:port (rejects when the port is taken); does nothing when port is 0. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** `http://host:port` once listening, else undefined. */
  readonly url: string | undefined;
}

/**
 * The ops endpoints of a service, on a port of their own (never the public one):
 *
 * - `GET /metrics`: Prometheus text format of the registry.
 * - `GET /readyz`: 200 `{"status":"ready"}` when every check passes, else 503
 *   `{"status":"not_ready","checks":{"<name>":"ok"|"<error message>"}}`.
 * - `GET /healthz`: 200 `{"status":"ok"}` while the process runs.
 */
export function createOpsServer(options: OpsServerOptions): OpsServer {
  const { host, port, logger } = options;
  const registry = options.registry ?? defaultRegistry;
  const checks = options.checks ?? {};
  const checkTimeoutMs = options.checkTimeoutMs ?? 2000;
  if (registry === defaultRegistry) ensureDefaultMetrics();
  let server: Server | undefined;
  let url: string | undefined;

  async function readiness(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const entries = Object.entries(checks);
    const results = await Promise.all(
      entries.map(async ([, check]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            Promise.resolve().then(check),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`no answer within ${checkTimeoutMs} ms`)),
                checkTimeoutMs,
              );
            }),
          ]);
          return 'ok';
        } catch (error) {
          return error instanceof Error ? error.message || error.name : String(error);
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return {
      ready: results.every((result) => result === 'ok'),
      checks: Object.fromEntries(entries.map(([name], i) => [name, results[i] as string])),
    };
  }

  function json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  }

  async function handle(method: string, path: string, res: ServerResponse): Promise<void> {
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/metrics': {
        const text = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
        return;
      }
      case '/readyz': {
        const result = await readiness();
        if (result.ready) json(res, 200, { status: 'ready' });
        else json(res, 503, { status: 'not_ready', checks: result.checks });
        return;
      }
      case '/healthz':
        json(res, 200, { status: 'ok' });
        return;
      default:
        json(res, 404, { status: 'not_found' });
    }
  }

  return {
    get url() {
      return url;
    },
    async start() {
      if (port === 0 || server) return;
      const created = createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0] ?? '/';
        handle(req.method ?? 'GET', path, res).catch((error: unknown) => {
          logger.warn({ err: error, path }, 'ops request failed');
          if (!res.headersSent) json(res, 500, { status: 'error' });
          else res.end();
        });
      });
      await new Promise<void>((resolve, reject) => {
        created.once('error', reject);
        created.listen(port, host, () => {
          created.off('error', reject);
          resolve();
        });
      });
      server = created;
      const address = created.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      url = `http://${shownHost}:${address.port}`;
      logger.info({ ops: url }, 'ops server listening (/metrics, /readyz, /healthz)');
    },
    async stop() {
      const running = server;
      if (!running) return;
      server = undefined;
      url = undefined;
      await new Promise<void>((resolve) => {
        running.close(() => resolve());
        running.closeAllConnections();
      });
    },
  };
}
