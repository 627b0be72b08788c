import { isAbsolute, posix, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, serveMetrics } from '@lighthouse-bridge/core/observability';
import { openStore, parseStoreUrl, storeUrlFrom } from '@lighthouse-bridge/core';
import { clientOptions, createRedisClient } from '@lighthouse-bridge/core/redis';
import {
  FuseMounter,
  givenKeeper,
  predecessorHandover,
  liveWhenSocketAnswers,
  MountRegistry,
  noConfig,
  ownKeeper,
  readyWhenRegistered,
  redisConfigSource,
  registeredMounter,
  serveHealth,
  serveRegistration,
  socketPathOf,
  startCsiDriver,
  type CustodySource,
  type DriverMode,
  type PluginRegistration,
} from '@lighthouse-bridge/csi-driver/csi';
import { projectValidator } from '@lighthouse-bridge/csi-driver';
import { parsePortFlag, runCommand, STORE_FLAGS_USAGE, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

/**
 * From SIGTERM, how long a stopping plugin may wait for its mounts' queued changes to reach the
 * store: the keeper SIGKILLs it 5 s after its SIGTERM, and the log needs its flush.
 */
const SETTLE_MS = 3_500;

const USAGE = `usage: lighthouse-bridge csi --endpoint unix:///PATH.sock --node-id NODE [options]
Runs the CSI driver bridge.lighthouse.dev on a unix socket. A keeper process holds each mount's FUSE
connection (ADR 0083): after a crash or SIGTERM of this process, the same command again takes the
live mounts over and running pods carry on. On SIGTERM it stops serving and leaves its mount points in
place. If the keeper is gone too, the mounts are dead (ENOTCONN) and the next instance mounts them
again for new pods (ADR 0071).
  --endpoint URL             unix:///ABSOLUTE/PATH.sock (default: $CSI_ENDPOINT)
  --node-id NODE             this node's name (default: $NODE_NAME)
  --mode MODE                node | controller | all (default: all)
  --state-dir DIR            where publish and volume records live (default: /var/lib/lighthouse-bridge/csi)
  --metrics-port N           serve /metrics and /healthz on this port
  --metrics-host HOST        address for /metrics (default: 127.0.0.1)
  --registration-socket PATH register with the kubelet: serve its plugin registration API on this
                             socket in <kubelet dir>/plugins_registry/ (--mode node or all)
  --kubelet-registration-path PATH
                             the CSI socket's absolute path as the kubelet sees it on the host
                             (default: the --endpoint's path)
  --health-port N            serve /healthz (the CSI socket answers Identity.Probe within 2 s) and
                             /readyz (mounts recovered and, with --registration-socket, the kubelet
                             registered the plugin) on this port: 200 "ok", else 503 and why
  --health-host HOST         address for /healthz and /readyz (default: 127.0.0.1)
  --require-access-config    refuse to mount projects that have no access configuration
  --keeper-socket PATH       the keeper holding the mounts' connections (node and all modes; default:
                             $LHB_KEEPER_SOCKET, set when lighthouse-bridge-keeper runs this command
                             as its supervisor, else STATE-DIR/keeper.sock, a keeper this command
                             starts detached and that exits once it holds nothing)
  --no-custody               no keeper: if this process dies, its mounts are dead until remounted
  --mount-expiry SECONDS     a mount stops counting in the project's registry (BridgeProject status)
                             this long after its node plugin last refreshed it (default: 60)
${STORE_FLAGS_USAGE}`;

export function run(argv: string[]): Promise<number> {
  return runCommand('csi', USAGE, async () => {
    const { values } = parseArgs({
      args: argv,
      options: {
        endpoint: { type: 'string' },
        'node-id': { type: 'string' },
        store: { type: 'string' },
        'state-dir': { type: 'string' },
        mode: { type: 'string' },
        'metrics-port': { type: 'string' },
        'metrics-host': { type: 'string' },
        'registration-socket': { type: 'string' },
        'kubelet-registration-path': { type: 'string' },
        'health-port': { type: 'string' },
        'health-host': { type: 'string' },
        'require-access-config': { type: 'boolean' },
        'mount-expiry': { type: 'string' },
        'keeper-socket': { type: 'string' },
        'no-custody': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const endpoint = values.endpoint ?? process.env['CSI_ENDPOINT'];
    const nodeId = values['node-id'] ?? process.env['NODE_NAME'];
    if (!endpoint) throw new UsageError('--endpoint is required');
    if (!nodeId) throw new UsageError('--node-id is required');
    let socketPath: string;
    try {
      socketPath = socketPathOf(endpoint);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const mode = values.mode ?? 'all';
    if (mode !== 'node' && mode !== 'controller' && mode !== 'all') throw new UsageError(`--mode must be node, controller or all, got "${mode}"`);
    const metricsPort = values['metrics-port'] === undefined ? undefined : parsePortFlag(values['metrics-port'], '--metrics-port');
    const registration = registrationFlags(values, mode, socketPath);
    const healthPort = values['health-port'] === undefined ? undefined : parsePortFlag(values['health-port'], '--health-port');
    if (healthPort === undefined && values['health-host'] !== undefined) throw new UsageError('--health-host needs --health-port');
    if (healthPort !== undefined && healthPort !== 0 && healthPort === metricsPort) throw new UsageError(`--health-port and --metrics-port must differ, both are ${healthPort}`);
    const mountExpirySeconds = Number(values['mount-expiry'] ?? 60);
    if (!(mountExpirySeconds > 0 && mountExpirySeconds <= 86_400)) throw new UsageError(`--mount-expiry must be a number of seconds above 0 and at most 86400, got "${values['mount-expiry']}"`);
    const stateDir = resolve(values['state-dir'] ?? '/var/lib/lighthouse-bridge/csi');
    const storeUrl = storeUrlFrom(values.store);
    const parsedUrl = parseStoreUrl(storeUrl);

    const log = createLogger('csi');
    const custody = custodyFlags(values, mode, stateDir, (message, fields) => log.info(message, fields));
    const store = await openStore(storeUrl);
    const configs = parsedUrl.kind === 'redis' ? redisConfigSource(parsedUrl) : noConfig;
    // Written with the plugin's own credentials; the project's ACL user only reads the registry.
    const registry =
      parsedUrl.kind === 'redis'
        ? new MountRegistry({ client: createRedisClient(parsedUrl, clientOptions.mountRegistry()), nodeId, expiryMs: mountExpirySeconds * 1000, log })
        : undefined;
    const fuse = new FuseMounter(
      store,
      (error, context) => log.error('filesystem error', { ...context, error: error.message }),
      // Not the kubelet target: agents name files by where their containers mount the volume.
      (project, workspacePath) =>
        projectValidator(store, project, undefined, {
          storeUrl,
          logger: log,
          ...(workspacePath === undefined ? {} : { projectRoot: posix.join(workspacePath, 'current') }),
        }),
      custody,
    );
    // Stopped in reverse order, at SIGTERM or when a later part fails to start (a port in use, a file
    // where the registration socket goes), which must end the process rather than leave it half up.
    const started: Array<() => unknown> = [() => configs.close(), () => registry?.close()];
    const stopAll = async (): Promise<void> => {
      for (const stop of started.reverse()) {
        await Promise.resolve()
          .then(stop)
          .catch((error: unknown) => log.error('stopping a part failed', { error: (error as Error).message }));
      }
    };
    try {
      // Before recovery, so /readyz says "recovering" rather than refusing the connection.
      let recovered = false;
      let registered: PluginRegistration | undefined;
      if (healthPort !== undefined) {
        const health = await serveHealth({
          port: healthPort,
          host: values['health-host'] ?? '127.0.0.1',
          live: liveWhenSocketAnswers(socketPath),
          ready: readyWhenRegistered(
            () => recovered,
            () => (registration ? (registered?.state ?? { state: 'waiting' }) : undefined),
          ),
        });
        started.push(() => health.close());
        log.info('health serving', { port: health.port });
      }
      const driver = await startCsiDriver({
        endpoint,
        nodeId,
        mode: mode as DriverMode,
        store,
        stateDir,
        mounter: registry ? registeredMounter(fuse, registry) : fuse,
        configs,
        requireAccessConfig: values['require-access-config'] ?? false,
        log,
      });
      started.push(() => driver.stop());
      recovered = true;
      // Only now: the kubelet dials the endpoint as soon as it has read it from GetInfo.
      if (registration) {
        const served = await serveRegistration({ ...registration, log });
        registered = served;
        started.push(() => served.stop());
      }
      if (metricsPort !== undefined) {
        const metrics = await serveMetrics({ port: metricsPort, host: values['metrics-host'] ?? '127.0.0.1', health: () => store.ping().then(() => true) });
        started.push(() => metrics.close());
        log.info('metrics serving', { port: metrics.port });
      }
    } catch (error) {
      await stopAll();
      // Mounts recovered before the failure keep the event loop alive (ADR 0071).
      setTimeout(() => process.exit(), 1000).unref();
      throw error;
    }

    const signal = await new Promise<NodeJS.Signals>((done) => {
      process.once('SIGTERM', () => done('SIGTERM'));
      process.once('SIGINT', () => done('SIGINT'));
    });
    const settleBy = performance.now() + SETTLE_MS;
    const settleLeft = (): number => Math.max(0, settleBy - performance.now());
    log.info(custody ? 'stopping; the keeper holds the mounts for the next plugin instance' : 'stopping; the next plugin instance mounts these targets again', { signal });
    // The mounts are still served until the exit: changes already answered but still queued
    // (chmod, utimens, ADR 0098) reach the store first, and the exit follows the last check at once.
    // Alongside stopAll, which may wait for a gRPC call in flight: the keeper's SIGKILL does not.
    const [, settled] = await Promise.all([stopAll(), fuse.settle(settleLeft())]);
    if (!settled) log.warn('changes still queued at exit: the store did not take them in time', { settleMs: SETTLE_MS });
    // The FUSE sessions keep the event loop alive by design (see ADR 0071): leave explicitly.
    await new Promise<void>((done) => {
      setTimeout(done, 1000).unref();
      log.on('finish', done).end();
    });
    // What was answered while the log flushed.
    await fuse.settle(settleLeft());
    process.exit(EXIT.ok);
  });
}

/** Where the mounts' connections are kept: undefined with `--no-custody` or when this process mounts nothing. */
function custodyFlags(
  values: { 'keeper-socket'?: string | undefined; 'no-custody'?: boolean | undefined },
  mode: string,
  stateDir: string,
  log: (message: string, fields: Record<string, unknown>) => void,
): CustodySource | undefined {
  const socket = values['keeper-socket'];
  if (values['no-custody']) {
    if (socket !== undefined) throw new UsageError('--keeper-socket and --no-custody exclude each other');
    return undefined;
  }
  if (mode === 'controller') {
    if (socket !== undefined) throw new UsageError('--keeper-socket keeps mounts; it needs --mode node or all, not controller');
    return undefined;
  }
  if (socket !== undefined && !isAbsolute(socket)) throw new UsageError(`--keeper-socket must be an absolute path, got "${socket}"`);
  const given = socket ?? process.env['LHB_KEEPER_SOCKET'];
  // A rolling upgrade: our supervisor found the previous plugin's keeper and names it (ADR 0083).
  return given ? givenKeeper(given, stateDir, predecessorHandover(process.env['LHB_KEEPER_PREDECESSOR'], log)) : ownKeeper(stateDir);
}

/** `--registration-socket` and `--kubelet-registration-path`, checked; undefined without the former. */
function registrationFlags(
  values: { 'registration-socket'?: string | undefined; 'kubelet-registration-path'?: string | undefined },
  mode: string,
  socketPath: string,
): { socketPath: string; endpoint: string } | undefined {
  const socket = values['registration-socket'];
  const endpoint = values['kubelet-registration-path'];
  if (socket === undefined) {
    if (endpoint !== undefined) throw new UsageError('--kubelet-registration-path needs --registration-socket');
    return undefined;
  }
  if (mode === 'controller') throw new UsageError('--registration-socket registers a node plugin; it needs --mode node or all, not controller');
  if (!isAbsolute(socket)) throw new UsageError(`--registration-socket must be an absolute path, got "${socket}"`);
  // sun_path holds 108 bytes with the terminating NUL; Node would fail the bind with a vaguer error.
  if (Buffer.byteLength(socket) > 107) throw new UsageError(`--registration-socket is longer than a unix socket path may be (107 bytes): "${socket}"`);
  if (endpoint !== undefined && !isAbsolute(endpoint)) throw new UsageError(`--kubelet-registration-path must be an absolute path, got "${endpoint}"`);
  return { socketPath: socket, endpoint: endpoint ?? socketPath };
}
