import {
  Server,
  status,
  type handleUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { csiRpcDuration, secondsSince, type Logger } from '@lighthouse-bridge/core/observability';
import type { EventStore } from '@lighthouse-bridge/core';
import type { ConfigSource } from './access.js';
import { ControllerService } from './controller.js';
import { toStatus } from './errors.js';
import { IdentityService } from './identity.js';
import { AbortIfBusy } from './abortIfBusy.js';
import type { Mounter } from './mounter.js';
import { NodeService } from './node.js';
import { loadCsiPackage } from './proto.js';
import { recoverMounts, type RecoveryOutcome } from './recovery.js';
import { openDriverState } from './state.js';
import { serveOnUnixSocket } from './unixSocket.js';

export type DriverMode = 'node' | 'controller' | 'all';

export interface CsiDriverOptions {
  /** `unix:///abs/path.sock`, `unix:/abs/path.sock` or a plain absolute path. */
  endpoint: string;
  nodeId: string;
  mode: DriverMode;
  store: EventStore;
  stateDir: string;
  mounter: Mounter;
  configs: ConfigSource;
  requireAccessConfig: boolean;
  log: Logger;
  /** How often to retry mounts that recovery could not repair; 0 disables the retries. */
  recoveryIntervalMs?: number;
}

export interface CsiDriver {
  readonly socketPath: string;
  /**
   * Stops serving gRPC. Mounts are left in place on purpose (ADR 0071): unmounting would expose the
   * bare target directory to the pod's writes; they die with this process, and the next instance
   * mounts them again for pods started after that.
   */
  stop(): Promise<void>;
}

export function socketPathOf(endpoint: string): string {
  const path = endpoint.replace(/^unix:\/\//, '').replace(/^unix:/, '');
  if (!path.startsWith('/')) throw new Error(`endpoint must be unix:///ABSOLUTE/PATH.sock, got "${endpoint}"`);
  return path;
}

/**
 * Starts the CSI driver: recovers recorded mounts first (so kubelet's first calls after a restart
 * meet a settled node), then serves Identity plus the Controller and/or Node services.
 */
export async function startCsiDriver(o: CsiDriverOptions): Promise<CsiDriver> {
  const socketPath = socketPathOf(o.endpoint);
  const state = openDriverState(o.stateDir);
  const targets = new AbortIfBusy();
  const { services } = loadCsiPackage();
  const server = new Server();
  const serveNode = o.mode !== 'controller';
  const serveController = o.mode !== 'node';
  const recoveryDeps = { state, mounter: o.mounter, configs: o.configs, targets, log: o.log };

  const recovered = serveNode ? await recoverMounts(recoveryDeps) : new Map<string, RecoveryOutcome>();
  if (recovered.size > 0) o.log.info('start-up recovery done', { outcomes: Object.fromEntries(recovered) });

  server.addService(services.Identity, handlers(services.Identity, new IdentityService(o.store, serveController), o.log));
  if (serveController) server.addService(services.Controller, handlers(services.Controller, new ControllerService(state), o.log));
  if (serveNode) {
    const node = new NodeService({
      nodeId: o.nodeId,
      state,
      mounter: o.mounter,
      configs: o.configs,
      targets,
      requireAccessConfig: o.requireAccessConfig,
    });
    server.addService(services.Node, handlers(services.Node, node, o.log));
  }

  const listener = await serveOnUnixSocket(server, socketPath);
  o.log.info('CSI driver serving', { socket: socketPath, mode: o.mode, nodeId: o.nodeId, store: o.store.location });

  let retry: NodeJS.Timeout | undefined;
  const interval = o.recoveryIntervalMs ?? 10_000;
  if (serveNode && interval > 0) {
    let running = false;
    retry = setInterval(() => {
      if (running) return;
      running = true;
      // During a surge rollout the successor owns the node once its socket is in place: from then
      // on only it repairs, so two plugins never mount the same record.
      listener
        .stillOurs()
        .then((ours) => {
          if (ours) return recoverMounts(recoveryDeps).then(() => undefined);
          o.log.info('another plugin serves this node now; mount recovery stops here', { socket: socketPath });
          clearInterval(retry);
        })
        .catch((error: unknown) => o.log.error('mount recovery pass failed', { error: (error as Error).message }))
        .finally(() => {
          running = false;
        });
    }, interval);
    retry.unref();
  }

  return {
    socketPath,
    async stop() {
      if (retry) clearInterval(retry);
      await listener.close();
    },
  };
}

/**
 * grpc-js handlers for every method of `definition` that `service` implements, each timed and with
 * its errors mapped to a gRPC status here, once. Methods the service lacks answer UNIMPLEMENTED.
 */
function handlers(definition: ServiceDefinition, service: object, log: Logger): UntypedServiceImplementation {
  const implementation: UntypedServiceImplementation = {};
  for (const method of Object.keys(definition)) {
    const fn = (service as Record<string, unknown>)[method];
    if (typeof fn !== 'function') continue;
    const call = (fn as (request: unknown) => Promise<unknown>).bind(service);
    const handler: handleUnaryCall<unknown, unknown> = (unaryCall, callback) => {
      const start = performance.now();
      call(unaryCall.request).then(
        (response) => {
          csiRpcDuration.observe({ method, code: 'OK' }, secondsSince(start));
          callback(null, response);
        },
        (error: unknown) => {
          const mapped = toStatus(error);
          const code = status[mapped.code] ?? String(mapped.code);
          csiRpcDuration.observe({ method, code }, secondsSince(start));
          if (mapped.code === status.INTERNAL || mapped.code === status.UNAVAILABLE) {
            log.error('CSI call failed', { method, code, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
          } else {
            log.info('CSI call refused', { method, code, reason: mapped.details });
          }
          callback({ code: mapped.code, details: mapped.details });
        },
      );
    };
    implementation[method] = handler;
  }
  return implementation;
}
