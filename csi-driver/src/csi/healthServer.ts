import { Client, credentials, status } from '@grpc/grpc-js';
import { lstat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadCsiPackage } from './proto.js';
import type { RegistrationState } from './registration.js';

/** A health check: undefined when healthy, else the one-line reason it is not. */
export type HealthCheck = () => Promise<string | undefined>;

export interface HealthServerOptions {
  port: number;
  host: string;
  /** `/healthz`: failing it makes the kubelet restart the plugin. */
  live: HealthCheck;
  /** `/readyz`: failing it holds a rolling update back. */
  ready: HealthCheck;
}

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/** The kubelet's probes of the node plugin: 200 "ok", else 503 with the reason (ADR 0076). */
export async function serveHealth(o: HealthServerOptions): Promise<HealthServer> {
  const checks: Record<string, HealthCheck> = { '/healthz': o.live, '/readyz': o.ready };
  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const check = checks[(req.url ?? '/').split('?')[0] ?? '/'];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (!check) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const reason = await check().catch((error: unknown) => `health check failed: ${(error as Error).message}`);
    res.writeHead(reason === undefined ? 200 : 503, { 'content-type': 'text/plain' }).end(`${reason ?? 'ok'}\n`);
  };
  const server = createServer((req, res) => void answer(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

const LIVENESS_DEADLINE_MS = 2000;

/**
 * Liveness as the kubelet would see the plugin: Identity.Probe through the CSI socket file, on a
 * fresh connection each time (an open one would outlive a deleted socket file). Whether the store
 * answers (Probe's `ready`) does not count: a restart cannot fix the store, and it would take
 * every FUSE mount of the node down with the process.
 */
export function liveWhenSocketAnswers(socketPath: string): HealthCheck {
  const probe = loadCsiPackage().services.Identity['Probe'];
  if (!probe) throw new Error('csi.proto has no Identity.Probe');
  return async () => {
    const info = await lstat(socketPath).catch(() => undefined);
    if (!info?.isSocket()) return `CSI socket ${socketPath} is missing`;
    const client = new Client(`unix://${socketPath}`, credentials.createInsecure());
    try {
      return await new Promise<string | undefined>((resolve) => {
        client.makeUnaryRequest(probe.path, probe.requestSerialize, probe.responseDeserialize, {}, { deadline: Date.now() + LIVENESS_DEADLINE_MS }, (error) => {
          if (!error) resolve(undefined);
          else if (error.code === status.DEADLINE_EXCEEDED) resolve(`CSI socket ${socketPath} did not answer Identity.Probe within ${LIVENESS_DEADLINE_MS / 1000} s`);
          else resolve(`CSI socket ${socketPath} failed Identity.Probe: ${status[error.code] ?? error.code} ${error.details}`);
        });
      });
    } finally {
      client.close();
    }
  };
}

/**
 * Ready once start-up recovery is done and, when the plugin registers itself, the kubelet's latest
 * word is that it registered the plugin.
 */
export function readyWhenRegistered(recovered: () => boolean, registration: () => RegistrationState | undefined): HealthCheck {
  return async () => {
    if (!recovered()) return 'recovering the mounts published before the start';
    const state = registration();
    if (state?.state === 'waiting') return 'waiting for the kubelet to register the plugin';
    if (state?.state === 'refused') return `the kubelet refused to register the plugin: ${state.error}`;
    return undefined;
  };
}
