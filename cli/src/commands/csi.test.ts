import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstat, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCsiPackage, loadRegistrationPackage } from '@lighthouse-bridge/csi-driver/csi';
import { csiClients, kubeletRegistrar, startPlugin, type PluginProcess } from '@lighthouse-bridge/test/csiPlugin';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { freePort } from '@lighthouse-bridge/test/ports';
import { tempDir } from '@lighthouse-bridge/test/tmp';

/**
 * The node plugin registers itself with the kubelet and answers the kubelet's probes (ADR 0076).
 * The test plays the kubelet against the real `lighthouse-bridge csi`: it reads the registration
 * socket with a client built from our pluginregistration.proto, dials the endpoint it is given and
 * reports the registration back, while watching /healthz and /readyz.
 */
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const CSI = loadCsiPackage().grpcObject;
const REGISTRATION = loadRegistrationPackage().grpcObject;
const DRIVER = 'bridge.lighthouse.dev';

async function probe(port: number, path: '/healthz' | '/readyz'): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.text()).trim() };
}

/** Resolves once something accepts connections on the socket file. */
function serving(socket: string): Promise<boolean> {
  return eventually(`a server on ${socket}`, async () => (await lstat(socket).catch(() => undefined))?.isSocket() === true, 15_000, 50);
}

let dir: { dir: string; remove(): Promise<void> };
before(async () => {
  dir = await tempDir('lhb-csi-registration-');
});
after(() => dir?.remove());

describe('registration with the kubelet and the health endpoints', () => {
  let plugin: PluginProcess | undefined;
  after(() => plugin?.kill('SIGKILL'));

  test('GetInfo names the driver and the host path of its socket; /readyz waits for the kubelet; /healthz follows the CSI socket', async () => {
    const csiDir = join(dir.dir, 'container', 'csi');
    // The host's view of the same directory, as the kubelet would name it.
    const hostPluginDir = join(dir.dir, 'host', 'plugins', DRIVER);
    await mkdir(join(dir.dir, 'host', 'plugins'), { recursive: true });
    await mkdir(csiDir, { recursive: true });
    await symlink(csiDir, hostPluginDir);
    const registrationSocket = join(dir.dir, 'plugins_registry', `${DRIVER}-reg.sock`);
    const healthPort = await freePort();
    plugin = await startPlugin({
      socket: join(csiDir, 'csi.sock'),
      stateDir: join(dir.dir, 'state'),
      store: `file://${join(dir.dir, 'store')}`,
      args: ['--mode', 'node', '--registration-socket', registrationSocket, '--kubelet-registration-path', join(hostPluginDir, 'csi.sock'), '--health-port', String(healthPort)],
    });
    await serving(registrationSocket);

    const before = await probe(healthPort, '/readyz');
    assert.deepEqual(before, { status: 503, body: 'waiting for the kubelet to register the plugin' });
    assert.deepEqual(await probe(healthPort, '/healthz'), { status: 200, body: 'ok' });

    // A pre-1.26 kubelet sends the socket's path as :authority; the registration socket takes it too.
    const registrar = kubeletRegistrar(REGISTRATION, registrationSocket, { authority: registrationSocket });
    try {
      const info = await registrar.getInfo();
      assert.deepEqual(info, { type: 'CSIPlugin', name: DRIVER, endpoint: join(hostPluginDir, 'csi.sock'), supported_versions: ['1.0.0'] });

      // The kubelet dials the endpoint it was given and asks the node plugin who it is.
      const viaHost = csiClients(CSI, info.endpoint);
      try {
        assert.equal((await viaHost.call<{ name: string }>('Identity', 'GetPluginInfo', {})).name, DRIVER);
        assert.deepEqual(await viaHost.call('Identity', 'Probe', {}), { ready: { value: true } });
        assert.equal((await viaHost.call<{ node_id: string }>('Node', 'NodeGetInfo', {})).node_id, 'test-node');
      } finally {
        viaHost.close();
      }

      await registrar.notify(false, 'driver name bridge.lighthouse.dev already registered by another plugin');
      const refused = await probe(healthPort, '/readyz');
      assert.equal(refused.status, 503);
      assert.equal(refused.body, 'the kubelet refused to register the plugin: driver name bridge.lighthouse.dev already registered by another plugin');
      const errorLine = plugin.output().split('\n').find((line) => line.includes('kubelet refused to register the plugin'));
      assert.ok(errorLine, plugin.output());
      assert.match(errorLine, /"level":"error"/);
      assert.match(errorLine, /already registered by another plugin/);

      await registrar.notify(true);
      assert.deepEqual(await probe(healthPort, '/readyz'), { status: 200, body: 'ok' });
      assert.match(plugin.output(), /kubelet registered the plugin/);
    } finally {
      registrar.close();
    }

    // A socket that accepts but never answers, as a wedged gRPC server does: not alive, within the deadline.
    await rm(join(csiDir, 'csi.sock'));
    const held: Socket[] = [];
    const silent = createServer((connection) => void held.push(connection));
    await new Promise<void>((resolve) => silent.listen(join(csiDir, 'csi.sock'), resolve));
    try {
      const started = performance.now();
      const wedged = await probe(healthPort, '/healthz');
      assert.equal(wedged.status, 503);
      assert.match(wedged.body, /^CSI socket .*csi\.sock did not answer Identity.Probe within 2 s$/);
      assert.ok(performance.now() - started < 5000, `answered after ${Math.round(performance.now() - started)} ms`);
    } finally {
      for (const connection of held) connection.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }

    // A deleted CSI socket leaves the server running but unreachable for the kubelet: not alive.
    await rm(join(csiDir, 'csi.sock'), { force: true });
    const dead = await probe(healthPort, '/healthz');
    assert.equal(dead.status, 503);
    assert.equal(dead.body, `CSI socket ${join(csiDir, 'csi.sock')} is missing`);
    assert.equal((await fetch(`http://127.0.0.1:${healthPort}/nope`)).status, 404);

    // SIGTERM removes the registration socket, so the kubelet deregisters the driver.
    assert.equal(await plugin.kill('SIGTERM'), 0);
    await assert.rejects(lstat(registrationSocket), { code: 'ENOENT' });
  });

  test('after kill -9 the next plugin replaces both stale sockets; without --kubelet-registration-path the endpoint is --endpoint', async () => {
    const csiSocket = join(dir.dir, 'restart', 'csi.sock');
    const registrationSocket = join(dir.dir, 'restart-registry', `${DRIVER}-reg.sock`);
    const start = (): Promise<PluginProcess> =>
      startPlugin({
        socket: csiSocket,
        stateDir: join(dir.dir, 'restart-state'),
        store: `file://${join(dir.dir, 'store')}`,
        args: ['--mode', 'node', '--registration-socket', registrationSocket],
      });
    plugin = await start();
    await serving(registrationSocket);
    await plugin.kill('SIGKILL');
    assert.ok((await lstat(registrationSocket)).isSocket(), 'the killed plugin left its registration socket');

    plugin = await start();
    await serving(registrationSocket);
    const registrar = kubeletRegistrar(REGISTRATION, registrationSocket);
    try {
      assert.equal((await eventually('GetInfo on the new socket', () => registrar.getInfo().catch(() => undefined), 10_000, 100)).endpoint, csiSocket);
    } finally {
      registrar.close();
    }
    await plugin.kill('SIGKILL');
  });
});

describe('bad flags', () => {
  function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, [MAIN, 'csi', '--endpoint', `unix://${join(dir.dir, 'bad', 'csi.sock')}`, '--node-id', 'n', '--state-dir', join(dir.dir, 'bad', 'state'), '--store', `file://${join(dir.dir, 'bad', 'store')}`, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    return new Promise((resolve) =>
      child.once('exit', (code) => {
        clearTimeout(killer);
        resolve({ code, stderr });
      }),
    );
  }

  const usageErrors: Array<[string[], string]> = [
    [['--mode', 'controller', '--registration-socket', '/registration/r.sock'], '--registration-socket registers a node plugin; it needs --mode node or all, not controller'],
    [['--registration-socket', 'registration/r.sock'], '--registration-socket must be an absolute path, got "registration/r.sock"'],
    [['--registration-socket', `/${'x'.repeat(120)}.sock`], '--registration-socket is longer than a unix socket path may be (107 bytes)'],
    [['--registration-socket', '/registration/r.sock', '--kubelet-registration-path', 'plugins/csi.sock'], '--kubelet-registration-path must be an absolute path, got "plugins/csi.sock"'],
    [['--kubelet-registration-path', '/var/lib/kubelet/plugins/x/csi.sock'], '--kubelet-registration-path needs --registration-socket'],
    [['--health-port', '70000'], '--health-port expects a port number 0-65535, got "70000"'],
    [['--health-port', 'http'], '--health-port expects a port number 0-65535, got "http"'],
    [['--health-port', '9809', '--metrics-port', '9809'], '--health-port and --metrics-port must differ, both are 9809'],
    [['--health-host', '0.0.0.0'], '--health-host needs --health-port'],
    [['--keeper-socket', '/run/k.sock', '--no-custody'], '--keeper-socket and --no-custody exclude each other'],
    [['--keeper-socket', 'run/k.sock'], '--keeper-socket must be an absolute path, got "run/k.sock"'],
    [['--mode', 'controller', '--keeper-socket', '/run/k.sock'], '--keeper-socket keeps mounts; it needs --mode node or all, not controller'],
  ];
  for (const [args, message] of usageErrors) {
    test(`${args.join(' ')}: exit 2, "${message}"`, async () => {
      const { code, stderr } = await run(args);
      assert.equal(code, 2, stderr);
      assert.ok(stderr.includes(message), stderr);
    });
  }

  test('a file that is not a socket where the registration socket goes: exit 1 naming it, the file kept, nothing left serving', async () => {
    const occupied = join(dir.dir, 'bad', 'registry', 'notes.txt');
    await mkdir(join(dir.dir, 'bad', 'registry'), { recursive: true });
    await writeFile(occupied, 'not a socket\n');
    const { code, stderr } = await run(['--mode', 'node', '--registration-socket', occupied]);
    assert.equal(code, 1, stderr);
    assert.match(stderr, /notes\.txt exists and is not a socket; refusing to replace it/);
    assert.equal(await readFile(occupied, 'utf8'), 'not a socket\n');
    await assert.rejects(lstat(join(dir.dir, 'bad', 'csi.sock')), { code: 'ENOENT' }, 'the CSI socket was removed on the way out');
  });
});
