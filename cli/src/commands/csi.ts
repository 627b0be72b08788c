import { posix, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, serveMetrics, type MetricsServer } from '@lighthouse-bridge/core/observability';
import { openStore, parseStoreUrl, storeUrlFrom } from '@lighthouse-bridge/core';
import { clientOptions, createRedisClient } from '@lighthouse-bridge/core/redis';
import { FuseMounter, MountRegistry, noConfig, redisConfigSource, registeredMounter, socketPathOf, startCsiDriver, type DriverMode, type Mounter } from '@lighthouse-bridge/csi-driver/csi';
import { projectValidator } from '@lighthouse-bridge/csi-driver';
import { runCommand, STORE_FLAGS_USAGE, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

const USAGE = `usage: lighthouse-bridge csi --endpoint unix:///PATH.sock --node-id NODE [options]
Runs the CSI driver bridge.lighthouse.dev on a unix socket. On start it mounts again what it had
published before a restart; on SIGTERM it stops serving and leaves mounts for the next instance.
  --endpoint URL             unix:///ABSOLUTE/PATH.sock (default: $CSI_ENDPOINT)
  --node-id NODE             this node's name (default: $NODE_NAME)
  --mode MODE                node | controller | all (default: all)
  --state-dir DIR            where publish and volume records live (default: /var/lib/lighthouse-bridge/csi)
  --metrics-port N           serve /metrics and /healthz on this port
  --metrics-host HOST        address for /metrics (default: 127.0.0.1)
  --require-access-config    refuse to mount projects that have no access configuration
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
        'require-access-config': { type: 'boolean' },
        'mount-expiry': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const endpoint = values.endpoint ?? process.env['CSI_ENDPOINT'];
    const nodeId = values['node-id'] ?? process.env['NODE_NAME'];
    if (!endpoint) throw new UsageError('--endpoint is required');
    if (!nodeId) throw new UsageError('--node-id is required');
    try {
      socketPathOf(endpoint);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const mode = values.mode ?? 'all';
    if (mode !== 'node' && mode !== 'controller' && mode !== 'all') throw new UsageError(`--mode must be node, controller or all, got "${mode}"`);
    let metricsPort: number | undefined;
    if (values['metrics-port'] !== undefined) {
      metricsPort = Number(values['metrics-port']);
      if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) throw new UsageError(`--metrics-port must be a port number`);
    }
    const mountExpirySeconds = Number(values['mount-expiry'] ?? 60);
    if (!(mountExpirySeconds > 0 && mountExpirySeconds <= 86_400)) throw new UsageError(`--mount-expiry must be a number of seconds above 0 and at most 86400, got "${values['mount-expiry']}"`);
    const storeUrl = storeUrlFrom(values.store);
    const parsedUrl = parseStoreUrl(storeUrl);

    const log = createLogger('csi');
    const store = await openStore(storeUrl);
    const configs = parsedUrl.kind === 'redis' ? redisConfigSource(parsedUrl) : noConfig;
    // Written with the plugin's own credentials; the project's ACL user only reads the registry.
    const registry =
      parsedUrl.kind === 'redis'
        ? new MountRegistry({ client: createRedisClient(parsedUrl, clientOptions.mountRegistry()), nodeId, expiryMs: mountExpirySeconds * 1000, log })
        : undefined;
    const fuse: Mounter = new FuseMounter(
      store,
      (error, context) => log.error('filesystem error', { ...context, error: error.message }),
      // Not the kubelet target: agents name files by where their containers mount the volume.
      (project, workspacePath) =>
        projectValidator(store, project, undefined, {
          storeUrl,
          logger: log,
          ...(workspacePath === undefined ? {} : { projectRoot: posix.join(workspacePath, 'current') }),
        }),
    );
    const driver = await startCsiDriver({
      endpoint,
      nodeId,
      mode: mode as DriverMode,
      store,
      stateDir: resolve(values['state-dir'] ?? '/var/lib/lighthouse-bridge/csi'),
      mounter: registry ? registeredMounter(fuse, registry) : fuse,
      configs,
      requireAccessConfig: values['require-access-config'] ?? false,
      log,
    });
    let metrics: MetricsServer | undefined;
    if (metricsPort !== undefined) {
      metrics = await serveMetrics({ port: metricsPort, host: values['metrics-host'] ?? '127.0.0.1', health: () => store.ping().then(() => true) });
      log.info('metrics serving', { port: metrics.port });
    }

    const signal = await new Promise<NodeJS.Signals>((done) => {
      process.once('SIGTERM', () => done('SIGTERM'));
      process.once('SIGINT', () => done('SIGINT'));
    });
    log.info('stopping; mounts stay for the next plugin instance to recover', { signal });
    await driver.stop();
    await metrics?.close();
    await configs.close();
    registry?.close();
    // The FUSE sessions keep the event loop alive by design (see ADR 0071): leave explicitly.
    await new Promise<void>((done) => {
      setTimeout(done, 1000).unref();
      log.on('finish', done).end();
    });
    process.exit(EXIT.ok);
  });
}
