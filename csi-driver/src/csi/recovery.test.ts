import { status, type ServiceError } from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, open, readFile, rmdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { projectKeys } from '@lighthouse-bridge/core/redis';
import { openStore, parseProjectId, parseStoreUrl } from '@lighthouse-bridge/core';
import { createLogger } from '@lighthouse-bridge/core/observability';
import { redisConfigSource } from './access.js';
import { AbortIfBusy } from './abortIfBusy.js';
import { FuseMounter } from './mounter.js';
import { givenKeeper, ownKeeper, type CustodySource } from './custodySource.js';
import { NodeService } from './node.js';
import type { NodePublishVolumeRequest } from './messages.js';
import { recoverMounts } from './recovery.js';
import { openDriverState } from './state.js';
import { lazyUnmount, mountAt } from '../mount/mountpoint.js';
import { KeeperClient } from '../fuse/custody/keeper.js';
import { keeperPath } from '../fuse/kernel/native.js';
import { csiClients, startPlugin, type PluginProcess } from '@lighthouse-bridge/test/csiPlugin';
import { detachAllUnder } from '@lighthouse-bridge/test/mounts';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { missingRecords, startProgram, type Program } from '@lighthouse-bridge/test/custodyDrill';
import { loadCsiPackage } from './proto.js';

/**
 * The node plugin killed with -9 comes back: with custody (the default) it takes the live mounts
 * over and a process holding a file open there carries on (ADR 0083); without a keeper its mounts
 * serve again within 5 s, in place, for a process that keeps using the target path; targets kubelet
 * removed meanwhile are forgotten. SIGTERM leaves mounts for the next instance too. See ADR 0071.
 */
const CSI = loadCsiPackage().grpcObject;
let redis: RedisServer;
let dir: { dir: string; remove: () => Promise<void> };
const plugins: PluginProcess[] = [];
/** Processes playing pods, killed after the tests whatever happened. */
const readers: ChildProcess[] = [];
const programs: Program[] = [];

before(async () => {
  redis = await startRedis();
  dir = await tempDir('lhb-csi-recovery-');
});

after(async () => {
  for (const r of readers) r.kill('SIGKILL');
  for (const p of programs) p.kill();
  for (const p of plugins) await p.kill('SIGKILL');
  if (dir) await detachAllUnder(dir.dir);
  await redis?.stop();
  await dir?.remove();
});

const MOUNT_RW = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

/** A plugin whose records live in `name` under the test's directory; each test its own. */
async function start(args: string[] = ['--no-custody'], name = 'state'): Promise<PluginProcess> {
  const plugin = await startPlugin({ socket: join(dir.dir, `${name}.sock`), stateDir: join(dir.dir, name), store: redis.url, args });
  plugins.push(plugin);
  return plugin;
}

/** A separate process reading a file under the target by path every 20 ms, as a pod would. */
function startReader(file: string): { lines: string[]; child: ChildProcess } {
  const script = `
    const { readFile } = require('node:fs/promises');
    setInterval(() => readFile(process.argv[1], 'utf8').then(
      (text) => console.log('ok ' + Date.now() + ' ' + JSON.stringify(text)),
      (e) => console.log('err ' + Date.now() + ' ' + e.code)), 20);`;
  const child = spawn(process.execPath, ['-e', script, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let rest = '';
  child.stdout?.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  return { lines, child };
}

async function askValidate(target: string, request: object): Promise<{ decision: string }> {
  const handle = await open(join(target, '.bridge', 'validate'), 'r+');
  try {
    await handle.write(`${JSON.stringify(request)}\n`);
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
    return JSON.parse(buffer.subarray(0, bytesRead).toString('utf8')) as { decision: string };
  } finally {
    await handle.close();
  }
}

test('without a keeper, after kill -9 the restarted plugin serves the same targets again within 5 s', { timeout: 90_000 }, async (t) => {
  const first = await start();
  const csi = csiClients(CSI, first.socket);
  const kept = join(dir.dir, 'pods', 'a', 'volume');
  const dropped = join(dir.dir, 'pods', 'b', 'volume');
  try {
    await csi.call('Node', 'NodePublishVolume', { volume_id: 'team/recover', target_path: kept, volume_capability: MOUNT_RW, volume_context: { workspacePath: '/workspace' } });
    await csi.call('Node', 'NodePublishVolume', { volume_id: 'team/recover', target_path: dropped, volume_capability: MOUNT_RW, volume_context: {} });
    await writeFile(join(kept, 'current', 'hello.txt'), 'written before the crash\n');
  } finally {
    csi.close();
  }

  const watch = startReader(join(kept, 'current', 'hello.txt'));
  readers.push(watch.child);
  await eventually('the reader to see the file', () => watch.lines.some((l) => l.startsWith('ok ')), 10_000);

  await first.kill('SIGKILL');
  const crashed = Date.now();
  // A read in flight at the kill fails with ECONNABORTED; every later one with ENOTCONN.
  await eventually('the reader to see the dead mount (ENOTCONN)', () => watch.lines.some((l) => / ENOTCONN$/.test(l) && Number(l.split(' ')[1]) >= crashed), 10_000);
  // Meanwhile kubelet tore down the other pod: its target is gone.
  await lazyUnmount(dropped);
  await rmdir(dropped);

  const restartedAt = Date.now();
  const second = await start();
  await eventually('the reader to read through the repaired mount', () => watch.lines.some((l) => l.startsWith('ok ') && Number(l.split(' ')[1]) > restartedAt), 5000);
  const elapsed = Date.now() - restartedAt;
  assert.ok(elapsed < 5000, `recovered after ${elapsed} ms`);
  t.diagnostic(`served again ${elapsed} ms after the restart began`);
  const seen = watch.lines.filter((l) => l.startsWith('ok ')).at(-1) ?? '';
  assert.equal(JSON.parse(seen.split(' ').slice(2).join(' ')), 'written before the crash\n');

  const csi2 = csiClients(CSI, second.socket);
  try {
    const stats = await csi2.call<{ volume_condition: { abnormal: boolean } }>('Node', 'NodeGetVolumeStats', { volume_id: 'team/recover', volume_path: kept });
    assert.equal(stats.volume_condition.abnormal, false);
    const gone = await csi2.call('Node', 'NodeGetVolumeStats', { volume_id: 'team/recover', volume_path: dropped }).then(
      () => undefined,
      (e: ServiceError) => e.code,
    );
    assert.equal(gone, status.NOT_FOUND, 'the publish whose target vanished is forgotten');
    await writeFile(join(kept, 'current', 'after.txt'), 'written after recovery\n');
    // The remount kept the publish's workspacePath: a write there is inside the project, not escalated.
    assert.equal((await askValidate(kept, { agent: 'a1', tool: 'Write', input: { file_path: '/workspace/current/x', content: 'x' } })).decision, 'allow');

    // SIGTERM stops serving but leaves the mount for the next instance (kubelet owns it).
    await csi2.call('Identity', 'Probe', {});
  } finally {
    csi2.close();
  }
  assert.equal(await second.kill('SIGTERM'), 0);
  assert.ok(await mountAt(kept), 'SIGTERM leaves the mount in place');
  const third = await start();
  assert.equal(await readFile(join(kept, 'current', 'after.txt'), 'utf8'), 'written after recovery\n');
  await nodeCall(third, 'NodeUnpublishVolume', { volume_id: 'team/recover', target_path: kept });
  assert.equal(await mountAt(kept), undefined);
});

test('a project config that cannot be read mounts nothing; the next pass mounts the target', async () => {
  const url = parseStoreUrl(redis.url);
  assert.equal(url.kind, 'redis');
  const store = await openStore(redis.url);
  const configs = redisConfigSource(url);
  const mounter = new FuseMounter(store);
  const target = join(dir.dir, 'pods', 'c', 'volume');
  await mkdir(target, { recursive: true });
  const state = openDriverState(join(dir.dir, 'config-state'));
  const project = parseProjectId('team/configured');
  await state.publishes.put(target, { volumeId: 'team/configured', targetPath: target, project, readOnly: false, ephemeral: false, actor: 'node:test', publishedAt: new Date().toISOString() });
  const deps = { state, mounter, configs, targets: new AbortIfBusy(), log: createLogger('recovery-test') };
  try {
    // Unparseable: the limits it holds are unknown, so mounting with defaults would be wrong.
    await redis.cli(['SET', projectKeys(project).config, '{not json']);
    assert.deepEqual(await recoverMounts(deps), new Map([[target, 'failed']]));
    assert.equal(await mountAt(target), undefined, 'nothing is mounted with default limits');
    assert.ok(await state.publishes.get(target), 'the record stays for the next pass');
    await redis.cli(['SET', projectKeys(project).config, '{}']);
    assert.deepEqual(await recoverMounts(deps), new Map([[target, 'remounted']]));
    assert.ok(await mountAt(target));
  } finally {
    await mounter.unmount(target);
    await configs.close();
    await store.close();
  }
});

test('a symbolic link planted in a recorded target path after the publish is refused, not followed', async () => {
  const store = await openStore(redis.url);
  const url = parseStoreUrl(redis.url);
  assert.equal(url.kind, 'redis');
  const configs = redisConfigSource(url);
  const mounter = new FuseMounter(store);
  const elsewhere = join(dir.dir, 'elsewhere');
  await mkdir(join(elsewhere, 'volume'), { recursive: true });
  await mkdir(join(dir.dir, 'pods'), { recursive: true });
  // The pod directory was replaced by a link, e.g. through a hostPath, while the plugin was down.
  await symlink(elsewhere, join(dir.dir, 'pods', 'linked'));
  const target = join(dir.dir, 'pods', 'linked', 'volume');
  const state = openDriverState(join(dir.dir, 'link-state'));
  await state.publishes.put(target, { volumeId: 'team/linked', targetPath: target, project: parseProjectId('team/linked'), readOnly: false, ephemeral: false, actor: 'node:test', publishedAt: new Date().toISOString() });
  try {
    assert.deepEqual(await recoverMounts({ state, mounter, configs, targets: new AbortIfBusy(), log: createLogger('recovery-test') }), new Map([[target, 'failed']]));
    assert.equal(await mountAt(join(elsewhere, 'volume')), undefined, 'nothing mounted at the link destination');
    assert.ok(await state.publishes.get(target), 'the record stays, and recovery keeps refusing it');
  } finally {
    await mounter.unmount(target);
    await detachAllUnder(elsewhere);
    await configs.close();
    await store.close();
  }
});

test('with custody, a plugin killed with -9 and started again takes the live mount over: an open file keeps reading and writing, nothing lost', { timeout: 90_000 }, async (t) => {
  const stateDir = join(dir.dir, 'custody-state');
  const first = await start([], 'custody-state');
  const target = join(dir.dir, 'pods', 'held', 'volume');
  const { file, holder } = await publishWithHolder(first, 'team/custody', target);

  await first.kill('SIGKILL');
  // The pod's calls wait on the held connection meanwhile; a real supervisor restarts at once.
  await new Promise((r) => setTimeout(r, 300));
  const second = await start([], 'custody-state');
  assert.match(second.output(), /took over the live mount after restart/);
  await new Promise((r) => setTimeout(r, 500));
  const { writes, errors, maxGapMs } = await holder.stop();
  t.diagnostic(`${writes} writes, longest stall ${maxGapMs} ms`);
  assert.deepEqual(errors, {}, `no error through the crash (no ENOTCONN): ${holder.readerErrors.join('; ')}`);
  assert.ok(writes > 10, `the holder kept working (${writes} writes)`);
  assert.deepEqual(missingRecords(await readFile(file), writes), [], 'every write acknowledged through the crash is there');

  await nodeCall(second, 'NodeUnpublishVolume', { volume_id: 'team/custody', target_path: target });
  assert.equal(await mountAt(target), undefined);
  assert.equal(ownKeeper(stateDir).keeper.holds(target), false, 'an unpublished mount is not kept');
  await second.kill('SIGKILL');
});

test('a rolling upgrade: a second plugin under a successor keeper takes the live mounts over from the first, which it retires; a writer pauses only for the handover', { timeout: 90_000 }, async (t) => {
  const stateDir = join(dir.dir, 'upgrade-state');
  const keeperSocket = join(stateDir, 'keeper.sock');
  // As the chart runs it: the keeper is the supervisor; both pods share the state dir and the CSI socket path.
  const underKeeper = (): Promise<PluginProcess> =>
    startPlugin({ socket: join(dir.dir, 'upgrade.sock'), stateDir, store: redis.url, supervisor: [keeperPath, '--socket', keeperSocket, '--'] }).then((p) => (plugins.push(p), p));
  const old = await underKeeper();
  const target = join(dir.dir, 'pods', 'upgraded', 'volume');
  const { file, holder } = await publishWithHolder(old, 'team/upgrade', target);

  const successor = await underKeeper();
  await eventually('the successor to take the mount over', () => /took over the live mount/.test(successor.output()), 20_000);
  assert.match(successor.output(), /serving .*keeper\.sock\.next as its successor/);
  const retired = /"message":"predecessor retired".*?"ms":(\d+)/.exec(successor.output());
  assert.ok(retired, `the successor retired its predecessor: ${successor.output()}`);
  assert.match(old.output(), /retiring: passing SIGTERM/);
  await new Promise((r) => setTimeout(r, 500));
  const { writes, errors, maxGapMs } = await holder.stop();
  t.diagnostic(`${writes} writes; longest stall ${maxGapMs} ms (1 ms between iterations); retiring the predecessor took ${retired[1]} ms`);
  assert.deepEqual(errors, {}, `no error through the upgrade: ${holder.readerErrors.join('; ')}`);
  assert.deepEqual(missingRecords(await readFile(file), writes), [], 'every write acknowledged through the upgrade is there');

  // The old pod goes: its keeper exits, and the successor's keeper moves to the primary path.
  await old.kill('SIGTERM');
  await eventually('the successor keeper on the primary path', () => /now serving/.test(successor.output()), 5_000);
  assert.deepEqual(new KeeperClient(keeperSocket).list(), [target]);
  await nodeCall(successor, 'NodeUnpublishVolume', { volume_id: 'team/upgrade', target_path: target });
  assert.equal(await mountAt(target), undefined);
  await successor.kill('SIGTERM');
});

/** One call to `plugin`'s node service over its socket, as kubelet makes it. */
async function nodeCall(plugin: PluginProcess, method: string, request: object): Promise<void> {
  const csi = csiClients(CSI, plugin.socket);
  try {
    await csi.call('Node', method, request);
  } finally {
    csi.close();
  }
}

/**
 * Publishes `volumeId` at `target` through `plugin`, then a pod's program (in its own mount
 * namespace, on a private bind of the volume) works on a file there for 500 ms.
 */
async function publishWithHolder(plugin: PluginProcess, volumeId: string, target: string): Promise<{ file: string; holder: Program }> {
  await nodeCall(plugin, 'NodePublishVolume', { volume_id: volumeId, target_path: target, volume_capability: MOUNT_RW, volume_context: {} });
  const priv = join(dir.dir, 'private', volumeId.replace('/', '-'));
  await mkdir(priv, { recursive: true });
  const holder = await startProgram(target, priv, 'counter.txt');
  programs.push(holder);
  await new Promise((r) => setTimeout(r, 500));
  return { file: join(target, 'current', 'counter.txt'), holder };
}

/** What kubelet sends to publish `volumeId` read-write at `target`, typed as the node service takes it. */
function publishRequest(volumeId: string, target: string): NodePublishVolumeRequest {
  return {
    volume_id: volumeId,
    staging_target_path: '',
    target_path: target,
    volume_capability: { mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
    readonly: false,
    volume_context: {},
  };
}

/** A plugin with custody under `name` publishes `request`, writes kept.txt there, and is killed with -9: its keeper still holds the mount. */
async function crashWhilePublished(name: string, request: NodePublishVolumeRequest): Promise<void> {
  const crashed = await start([], name);
  await nodeCall(crashed, 'NodePublishVolume', request);
  await writeFile(join(request.target_path, 'current', 'kept.txt'), 'before the crash\n');
  await crashed.kill('SIGKILL');
}

/** The node service in this process, with custody, over the test's Redis; `use` runs with it and everything is closed after. */
async function withNodeService(stateDir: string, custody: CustodySource, target: string, use: (node: NodeService, mounter: FuseMounter) => Promise<void>): Promise<void> {
  const url = parseStoreUrl(redis.url);
  assert.equal(url.kind, 'redis');
  const store = await openStore(redis.url);
  const configs = redisConfigSource(url);
  const mounter = new FuseMounter(store, undefined, undefined, custody);
  try {
    await use(new NodeService({ nodeId: 'test-node', state: openDriverState(stateDir), mounter, configs, targets: new AbortIfBusy(), requireAccessConfig: false }), mounter);
  } finally {
    await mounter.unmount(target);
    await configs.close();
    await store.close();
  }
}

test('a publish of a target whose live connection the keeper holds takes it over, as recovery would', { timeout: 60_000 }, async () => {
  const target = join(dir.dir, 'pods', 'race', 'volume');
  const request = publishRequest('team/race', target);
  await crashWhilePublished('race-state', request);
  const stateDir = join(dir.dir, 'race-state');
  await withNodeService(stateDir, ownKeeper(stateDir), target, async (node, mounter) => {
    assert.equal(mounter.held(target), true);
    await node.NodePublishVolume(request);
    assert.equal(mounter.serves(target), true);
    assert.equal(mounter.held(target), false, 'held means held for someone to take over');
    assert.equal(await readFile(join(target, 'current', 'kept.txt'), 'utf8'), 'before the crash\n');
    await node.NodeUnpublishVolume({ volume_id: 'team/race', target_path: target });
    assert.equal(await mountAt(target), undefined);
  });
});

test('a held connection no publish record names is ended, not taken over: the publish mounts afresh, unpublish leaves nothing held', { timeout: 60_000 }, async () => {
  const target = join(dir.dir, 'pods', 'stale', 'volume');
  const request = publishRequest('team/stale', target);
  await crashWhilePublished('stale-state', request);
  // The same keeper, but a plugin whose state dir holds no record of the target.
  const custody = givenKeeper(join(dir.dir, 'stale-state', 'keeper.sock'), join(dir.dir, 'fresh-state'));
  await withNodeService(join(dir.dir, 'fresh-state'), custody, target, async (node, mounter) => {
    assert.equal(mounter.held(target), true);
    await node.NodePublishVolume(request);
    assert.equal(mounter.serves(target), true);
    // The new mount is in custody under the same name, held for this process's successor.
    assert.deepEqual(custody.keeper.list(), [target]);
    assert.equal(await readFile(join(target, 'current', 'kept.txt'), 'utf8'), 'before the crash\n');
    await node.NodeUnpublishVolume({ volume_id: 'team/stale', target_path: target });
    assert.equal(await mountAt(target), undefined);
    assert.deepEqual(custody.keeper.list(), []);
  });
});
