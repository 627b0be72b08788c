import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { registry as defaultRegistry } from './metrics.js';

export interface MetricsServerOptions {
  /** 0 picks a free port; the bound one is returned. */
  port: number;
  /**
   * Loopback unless widened on purpose (e.g. `--metrics-host 0.0.0.0` in a pod), so a test or a
   * laptop run never exposes metrics to the network by accident.
   */
  host?: string;
  /** `/healthz` answers 200 when this resolves true, 503 otherwise (or when it throws). */
  health?: () => boolean | Promise<boolean>;
  registry?: Registry;
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `/metrics` (Prometheus text format) and `/healthz`. */
export async function serveMetrics(options: MetricsServerOptions): Promise<MetricsServer> {
  const registry = options.registry ?? defaultRegistry;
  const health = options.health ?? (() => true);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType }).end(body);
    } else if (path === '/healthz') {
      let ok: boolean;
      try {
        ok = await health();
      } catch {
        ok = false;
      }
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'unhealthy\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
