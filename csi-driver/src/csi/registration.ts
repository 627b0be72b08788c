import { Server, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from '@lighthouse-bridge/core/observability';
import { DRIVER_NAME } from './identity.js';
import { loadRegistrationPackage } from './proto.js';
import { serveOnUnixSocket } from './unixSocket.js';

/** The CSI spec versions this driver serves, as the kubelet's registration handler reads them. */
const SUPPORTED_VERSIONS = ['1.0.0'];

/** What the kubelet last said about this plugin since it started. */
export type RegistrationState = { state: 'waiting' } | { state: 'registered' } | { state: 'refused'; error: string };

export interface RegistrationOptions {
  /** The socket in the kubelet's plugins_registry directory (as mounted into this container). */
  socketPath: string;
  /** The CSI socket's path as the kubelet sees it on the host. */
  endpoint: string;
  log: Logger;
}

export interface PluginRegistration {
  readonly state: RegistrationState;
  /** Stops serving and removes the socket, so the kubelet deregisters the driver. */
  stop(): Promise<void>;
}

/**
 * Serves the kubelet plugin registration API (ADR 0076) in place of the node-driver-registrar
 * sidecar: the kubelet watches plugins_registry, calls GetInfo on a new socket, dials the endpoint
 * it names, and reports the outcome with NotifyRegistrationStatus.
 */
export async function serveRegistration(o: RegistrationOptions): Promise<PluginRegistration> {
  let state: RegistrationState = { state: 'waiting' };
  const info = { type: 'CSIPlugin', name: DRIVER_NAME, endpoint: o.endpoint, supported_versions: SUPPORTED_VERSIONS };
  const implementation: UntypedServiceImplementation = {
    GetInfo(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) {
      o.log.info('kubelet asked for the plugin info', { endpoint: o.endpoint });
      callback(null, info);
    },
    NotifyRegistrationStatus(call: ServerUnaryCall<{ plugin_registered: boolean; error: string }, unknown>, callback: sendUnaryData<unknown>) {
      const { plugin_registered: registered, error } = call.request;
      // The latest word counts: a kubelet that restarts registers the plugin again and may refuse it.
      if (registered) {
        state = { state: 'registered' };
        o.log.info('kubelet registered the plugin', { driver: DRIVER_NAME, endpoint: o.endpoint });
      } else {
        state = { state: 'refused', error: error || 'no reason given' };
        o.log.error('kubelet refused to register the plugin', { driver: DRIVER_NAME, endpoint: o.endpoint, error: state.error });
      }
      callback(null, {});
    },
  };
  const server = new Server();
  server.addService(loadRegistrationPackage().service, implementation);
  const listener = await serveOnUnixSocket(server, o.socketPath);
  o.log.info('plugin registration serving', { socket: o.socketPath, endpoint: o.endpoint });
  return {
    get state() {
      return state;
    },
    stop: () => listener.close(),
  };
}
