import { credentials, type Client, type GrpcObject, type ServiceError } from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detachAllUnder } from './mounts.js';
import { startRedis, type RedisServer } from './redis.js';
import { tempDir } from './tmp.js';

/**
 * Test and bench support: runs the real `lighthouse-bridge csi` as a child process (so kill -9 is
 * a real crash and FUSE calls from the test never deadlock against the server) and talks to it with
 * a grpc-js client, as kubelet would. It spawns cli's build output and takes the loaded CSI proto
 * from the caller, so this package depends on none of the packages whose tests use it.
 */
const CLI = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));

/** The loaded CSI proto (csi-driver's `loadCsiPackage().grpcObject`), whose `csi.v1` holds the clients. */
export type CsiProto = GrpcObject;

export interface PluginProcess {
  readonly child: ChildProcess;
  readonly socket: string;
  /** Everything the plugin logged so far. */
  output(): string;
  /** Resolves with the exit code or signal once the process is gone. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface StartPluginOptions {
  socket: string;
  stateDir: string;
  store: string;
  nodeId?: string;
  args?: string[];
  /** How long to wait for the socket to answer; default 15 s. */
  readyTimeoutMs?: number;
  /**
   * A command the plugin runs under, as the chart's keeper supervises it (e.g. [keeper, '--socket',
   * S, '--']). The pair then runs in its own process group, and kill() signals the group.
   */
  supervisor?: string[];
}

export async function startPlugin(o: StartPluginOptions): Promise<PluginProcess> {
  const command = [process.execPath, CLI, 'csi', '--endpoint', `unix://${o.socket}`, '--node-id', o.nodeId ?? 'test-node', '--state-dir', o.stateDir, '--store', o.store, ...(o.args ?? [])];
  const [file, ...args] = [...(o.supervisor ?? []), ...command] as [string, ...string[]];
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: o.supervisor !== undefined });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const plugin: PluginProcess = {
    child,
    socket: o.socket,
    output: () => log,
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) {
        if (o.supervisor && child.pid !== undefined) process.kill(-child.pid, signal);
        else child.kill(signal);
      }
      return exited;
    },
  };
  const deadline = Date.now() + (o.readyTimeoutMs ?? 15_000);
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`plugin exited before serving:\n${log}`);
      if (await accepts(o.socket)) return plugin;
      if (Date.now() > deadline) throw new Error(`plugin did not listen on ${o.socket} within the timeout\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (error) {
    await plugin.kill();
    throw error;
  }
}

/**
 * The plugin listens only once its services are added and its recorded mounts recovered, so a
 * socket that accepts a connection is one that serves (a stale socket file refuses).
 */
export function accepts(socket: string): Promise<boolean> {
  return new Promise((done) => {
    const connection = connect(socket);
    connection.once('connect', () => {
      connection.destroy();
      done(true);
    });
    connection.once('error', () => done(false));
  });
}

export type ServiceName = 'Identity' | 'Controller' | 'Node';

export interface CsiClients {
  call<T = Record<string, unknown>>(service: ServiceName, method: string, request: object, timeoutMs?: number): Promise<T>;
  close(): void;
}

/** grpc-js clients for the three services on one socket; `authority` mimics old kubelets. */
export function csiClients(proto: CsiProto, socket: string, options: { authority?: string } = {}): CsiClients {
  const v1 = (proto['csi'] as Record<string, unknown>)['v1'] as Record<string, new (address: string, creds: unknown, options?: object) => Client>;
  const channelOptions = options.authority ? { 'grpc.default_authority': options.authority } : {};
  const make = (name: ServiceName): Client => {
    const Ctor = v1[name];
    if (!Ctor) throw new Error(`no ${name} service in the proto`);
    return new Ctor(`unix://${socket}`, credentials.createInsecure(), channelOptions);
  };
  const clients: Record<ServiceName, Client> = { Identity: make('Identity'), Controller: make('Controller'), Node: make('Node') };
  return {
    call<T>(service: ServiceName, method: string, request: object, timeoutMs = 20_000): Promise<T> {
      const client = clients[service] as unknown as Record<string, (req: object, opts: object, cb: (e: ServiceError | null, r: T) => void) => void>;
      const fn = client[method];
      if (!fn) return Promise.reject(new Error(`no method ${service}.${method}`));
      return new Promise<T>((resolve, reject) => {
        fn.call(client, request, { deadline: Date.now() + timeoutMs }, (error, response) => (error ? reject(error) : resolve(response)));
      });
    },
    close() {
      for (const client of Object.values(clients)) client.close();
    },
  };
}

/** The plugin registration API's messages, as the kubelet reads and sends them. */
export interface PluginInfo {
  type: string;
  name: string;
  endpoint: string;
  supported_versions: string[];
}

export interface KubeletRegistrar {
  getInfo(): Promise<PluginInfo>;
  notify(registered: boolean, error?: string): Promise<void>;
  close(): void;
}

/**
 * The kubelet's side of a registration socket, from the loaded registration proto
 * (csi-driver's `loadRegistrationPackage().grpcObject`); `authority` mimics old kubelets.
 */
export function kubeletRegistrar(proto: GrpcObject, socket: string, options: { authority?: string } = {}): KubeletRegistrar {
  type Unary = (request: object, options: { deadline: number }, callback: (error: ServiceError | null, response: unknown) => void) => void;
  const Registration = (proto['pluginregistration'] as Record<string, unknown>)['Registration'] as new (
    address: string,
    creds: unknown,
    options: object,
  ) => Client & Record<'GetInfo' | 'NotifyRegistrationStatus', Unary>;
  const client = new Registration(`unix://${socket}`, credentials.createInsecure(), options.authority ? { 'grpc.default_authority': options.authority } : {});
  const call = (method: 'GetInfo' | 'NotifyRegistrationStatus', request: object): Promise<unknown> =>
    new Promise((resolve, reject) => client[method](request, { deadline: Date.now() + 5000 }, (error, response) => (error ? reject(error) : resolve(response))));
  return {
    getInfo: () => call('GetInfo', {}) as Promise<PluginInfo>,
    notify: async (registered, error = '') => {
      await call('NotifyRegistrationStatus', { plugin_registered: registered, error });
    },
    close: () => client.close(),
  };
}

/** A plugin over its own real Redis in a fresh directory, with a client, for a test file to share. */
export interface PluginFixture {
  readonly redis: RedisServer;
  readonly dir: string;
  readonly plugin: PluginProcess;
  readonly csi: CsiClients;
  /** Kills the plugin, detaches every mount under `dir`, stops Redis and removes `dir`. */
  stop(): Promise<void>;
}

export async function startPluginFixture(proto: CsiProto, prefix: string): Promise<PluginFixture> {
  const redis = await startRedis();
  const { dir, remove } = await tempDir(prefix);
  const stop = async (plugin?: PluginProcess, csi?: CsiClients): Promise<void> => {
    csi?.close();
    await plugin?.kill('SIGKILL');
    await detachAllUnder(dir);
    await redis.stop();
    await remove();
  };
  try {
    const plugin = await startPlugin({ socket: join(dir, 'csi.sock'), stateDir: join(dir, 'state'), store: redis.url });
    const csi = csiClients(proto, plugin.socket);
    return { redis, dir, plugin, csi, stop: () => stop(plugin, csi) };
  } catch (error) {
    await stop();
    throw error;
  }
}
