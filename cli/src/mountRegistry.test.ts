import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCsiPackage } from '@lighthouse-bridge/csi-driver/csi';
import { connectProjectRedis, type ProjectRedis } from '@lighthouse-bridge/operator';
import { csiClients, startPlugin, type PluginProcess } from '@lighthouse-bridge/test/csiPlugin';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { detachAllUnder } from '@lighthouse-bridge/test/mounts';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';

/**
 * The mounts a BridgeProject's status counts are those node plugins really serve: the real plugin
 * records its publishes in Redis and the operator's own stats read them back (ADR 0063).
 */
const CSI = loadCsiPackage().grpcObject;
const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const EXPIRY_S = 2;
const PROJECT = { namespace: 'team', name: 'demo' };
let redis: RedisServer;
let dir: { dir: string; remove(): Promise<void> };
let operatorSide: ProjectRedis;

before(async () => {
  redis = await startRedis();
  dir = await tempDir('lhb-mount-registry-');
  operatorSide = connectProjectRedis(redis.url);
});

after(async () => {
  await operatorSide?.close();
  await detachAllUnder(dir.dir);
  await redis?.stop();
  await dir?.remove();
});

function start(name: string): Promise<PluginProcess> {
  return startPlugin({
    socket: join(dir.dir, `${name}.sock`),
    stateDir: join(dir.dir, `${name}-state`),
    store: redis.url,
    nodeId: name,
    args: ['--mount-expiry', String(EXPIRY_S)],
  });
}

const publishRequest = (target: string) => ({
  volume_id: 'team/demo',
  target_path: target,
  volume_capability: { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
  volume_context: {},
});

const activeMounts = async (): Promise<number> => (await operatorSide.stats(PROJECT)).activeMounts;

test('publish counts 1, unpublish 0; a plugin killed with -9 stops counting within the expiry', { timeout: 60_000 }, async (t) => {
  const plugin = await start('node-a');
  const csi = csiClients(CSI, plugin.socket);
  try {
    const target = join(dir.dir, 'pods', 'a', 'volume');
    await csi.call('Node', 'NodePublishVolume', publishRequest(target));
    assert.equal(await activeMounts(), 1);
    // Heartbeats keep it counted well past one expiry.
    await new Promise((r) => setTimeout(r, EXPIRY_S * 1500));
    assert.equal(await activeMounts(), 1);
    await csi.call('Node', 'NodeUnpublishVolume', { volume_id: 'team/demo', target_path: target });
    assert.equal(await activeMounts(), 0);

    await csi.call('Node', 'NodePublishVolume', publishRequest(target));
    assert.equal(await activeMounts(), 1);
    await plugin.kill('SIGKILL');
    const killedAt = performance.now();
    await eventually('the dead node no longer counts', async () => (await activeMounts()) === 0, EXPIRY_S * 1000 + 2_000, 100);
    const figure = performance.now() - killedAt;
    t.diagnostic(`counted 0 ${Math.round(figure)} ms after kill -9 (expiry ${EXPIRY_S} s)`);
    assert.ok(figure <= EXPIRY_S * 1000 + 1_000, `took ${Math.round(figure)} ms`);
  } finally {
    csi.close();
    await plugin.kill('SIGKILL');
    await detachAllUnder(dir.dir);
  }
});

test('--mount-expiry that is not a positive number of seconds is a usage error (exit 2) naming the flag', async () => {
  for (const bad of ['0', '-5', 'soon', '86401']) {
    const child = spawn(process.execPath, [MAIN, 'csi', '--endpoint', `unix://${join(dir.dir, 'never.sock')}`, '--node-id', 'n', '--store', redis.url, `--mount-expiry=${bad}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 2, `--mount-expiry ${bad}: ${stderr}`);
    assert.match(stderr, new RegExp(`--mount-expiry must be a number of seconds above 0 and at most 86400, got "${bad}"`));
  }
});
