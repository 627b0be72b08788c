import { status, type ServiceError } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { mkdir, open, readFile, rm, stat, symlink, writeFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RedisServer } from '@lighthouse-bridge/test/redis';
import { mountAt } from '../mount/mountpoint.js';
import { csiClients, startPlugin, startPluginFixture, type CsiClients, type PluginFixture } from '@lighthouse-bridge/test/csiPlugin';
import { detachAllUnder } from '@lighthouse-bridge/test/mounts';
import { loadCsiPackage } from './proto.js';

/**
 * The node service as kubelet drives it, against the spawned plugin with real FUSE mounts over a
 * real Redis: access control from the project's config, read-only mounts, ephemeral volumes, the
 * attribute allow-list, ABORTED for concurrent calls, stats on a dead mount.
 */
const CSI = loadCsiPackage().grpcObject;
let fixture: PluginFixture;
let redis: RedisServer;
let csi: CsiClients;

const MOUNT_RW = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const MOUNT_RO = { mount: {}, access_mode: { mode: 'MULTI_NODE_READER_ONLY' } };

function pod(namespace: string, serviceAccount: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'csi.storage.k8s.io/ephemeral': 'true',
    'csi.storage.k8s.io/pod.namespace': namespace,
    'csi.storage.k8s.io/pod.name': `${serviceAccount}-pod`,
    'csi.storage.k8s.io/pod.uid': '6d3c1f0e-0000-4000-8000-000000000001',
    'csi.storage.k8s.io/serviceAccount.name': serviceAccount,
    ...extra,
  };
}

let targets = 0;
const newTarget = (): string => join(fixture.dir, 'pods', `target-${++targets}`);

function publish(target: string, volumeContext: Record<string, string>, options: { readonly?: boolean; volumeId?: string; capability?: object } = {}): Promise<unknown> {
  return csi.call('Node', 'NodePublishVolume', {
    volume_id: options.volumeId ?? `csi-${target.replace(/\W/g, '')}`,
    target_path: target,
    volume_capability: options.capability ?? MOUNT_RW,
    readonly: options.readonly ?? false,
    volume_context: volumeContext,
  });
}

async function unpublish(target: string, volumeId?: string): Promise<void> {
  await csi.call('Node', 'NodeUnpublishVolume', { volume_id: volumeId ?? `csi-${target.replace(/\W/g, '')}`, target_path: target });
}

async function rejectsWith(promise: Promise<unknown>, code: status, pattern?: RegExp): Promise<ServiceError> {
  const error = await promise.then(
    () => assert.fail(`expected gRPC status ${status[code]}, got success`),
    (e: ServiceError) => e,
  );
  assert.equal(error.code, code, `expected ${status[code]}, got ${status[error.code]}: ${error.details}`);
  if (pattern) assert.match(error.details, pattern);
  return error;
}

before(async () => {
  fixture = await startPluginFixture(CSI, 'lhb-csi-node-');
  ({ redis, csi } = fixture);
  const access = { readWrite: ['team/writer'], readOnly: ['team/reader'], annotate: [] };
  await redis.cli(['SET', 'lhb:{team/secret}:config', JSON.stringify({ access })]);
});

after(() => fixture?.stop());

describe('access control from the project config', () => {
  test('a service account that is not listed is refused and nothing is mounted', async () => {
    const target = newTarget();
    await rejectsWith(publish(target, pod('team', 'intruder', { project: 'secret' })), status.PERMISSION_DENIED, /team\/intruder may not mount/);
    assert.equal(await mountAt(target), undefined);
  });

  test('a read-only account may mount read-only but not read-write', async () => {
    await rejectsWith(publish(newTarget(), pod('team', 'reader', { project: 'secret' })), status.PERMISSION_DENIED, /only read-only/);
    const target = newTarget();
    await publish(target, pod('team', 'reader', { project: 'secret' }), { readonly: true });
    assert.ok(await mountAt(target));
    await unpublish(target);
  });

  test('the listed writer mounts read-write; a pod of another namespace with the same name is refused', async () => {
    const target = newTarget();
    await publish(target, pod('team', 'writer', { project: 'secret' }));
    await writeFile(join(target, 'current', 'plan.md'), 'ship it\n');
    assert.equal(await readFile(join(target, 'current', 'plan.md'), 'utf8'), 'ship it\n');
    await unpublish(target);
    await rejectsWith(publish(newTarget(), pod('other', 'writer', { project: 'secret', namespace: 'team' })), status.PERMISSION_DENIED);
  });

  test('a project without access config is open by default', async () => {
    const target = newTarget();
    await publish(target, pod('team', 'anyone', { project: 'open' }));
    assert.ok(await mountAt(target));
    await unpublish(target);
  });
});

describe('read-only and ephemeral volumes', () => {
  test('an ephemeral volume mounts the project named in its attributes, in the pod namespace', async () => {
    const target = newTarget();
    await publish(target, pod('team', 'writer', { project: 'demo' }));
    const statusFile = JSON.parse(await readFile(join(target, '.bridge', 'status'), 'utf8')) as { project: string };
    assert.equal(statusFile.project, 'team/demo');
    await writeFile(join(target, 'current', 'hello.txt'), 'from an ephemeral volume\n');
    await unpublish(target);
    assert.equal(await mountAt(target), undefined);
    await assert.rejects(stat(target), { code: 'ENOENT' }, 'unpublish removes the target directory');
  });

  test('readonly mounts show the data and refuse writes with EROFS', async () => {
    const writer = newTarget();
    const reader = newTarget();
    await publish(writer, pod('team', 'writer', { project: 'shared' }));
    await writeFile(join(writer, 'current', 'notes.txt'), 'v1\n');
    await publish(reader, pod('team', 'writer', { project: 'shared' }), { readonly: true });
    assert.equal(await readFile(join(reader, 'current', 'notes.txt'), 'utf8'), 'v1\n');
    await assert.rejects(writeFile(join(reader, 'current', 'notes.txt'), 'v2\n'), { code: 'EROFS' });
    await assert.rejects(writeFile(join(reader, 'current', 'new.txt'), 'x'), { code: 'EROFS' });
    // A reader access mode alone makes the mount read-only, too.
    const byMode = newTarget();
    await publish(byMode, pod('team', 'writer', { project: 'shared' }), { capability: MOUNT_RO });
    await assert.rejects(writeFile(join(byMode, 'current', 'new.txt'), 'x'), { code: 'EROFS' });
    for (const t of [writer, reader, byMode]) await unpublish(t);
  });

  test('a persistent volume id names the project; publish and unpublish are idempotent', async () => {
    const created = await csi.call<{ volume: { volume_id: string; volume_context: Record<string, string> } }>('Controller', 'CreateVolume', {
      name: 'pvc-1234',
      volume_capabilities: [MOUNT_RW],
      parameters: { project: 'persistent', namespace: 'team' },
    });
    assert.match(created.volume.volume_id, /^team\/persistent\/[0-9a-f]{32}$/);
    const target = newTarget();
    const request = { volumeId: created.volume.volume_id };
    await publish(target, created.volume.volume_context, request);
    await publish(target, created.volume.volume_context, request);
    const statusFile = JSON.parse(await readFile(join(target, '.bridge', 'status'), 'utf8')) as { project: string };
    assert.equal(statusFile.project, 'team/persistent');
    // Same target, other volume: the CO must be told, not silently remounted.
    await rejectsWith(publish(target, {}, { volumeId: 'team/other' }), status.ALREADY_EXISTS);
    await unpublish(target, created.volume.volume_id);
    await unpublish(target, created.volume.volume_id);
    // Deleting the volume never deletes the project's data.
    await csi.call('Controller', 'DeleteVolume', { volume_id: created.volume.volume_id });
    const again = newTarget();
    await publish(again, { project: 'persistent', namespace: 'team' }, { volumeId: 'team/persistent' });
    assert.deepEqual(await readdir(join(again, 'current')), []);
    await unpublish(again, 'team/persistent');
  });
});

describe('bad input', () => {
  test('unknown volume attributes are refused with INVALID_ARGUMENT', async () => {
    await rejectsWith(publish(newTarget(), pod('team', 'writer', { project: 'demo', readonly: 'true' })), status.INVALID_ARGUMENT, /"readonly"/);
  });

  test('bad project names, block volumes and unknown volume ids are refused', async () => {
    await rejectsWith(publish(newTarget(), pod('team', 'writer', { project: '../etc' })), status.INVALID_ARGUMENT);
    await rejectsWith(publish(newTarget(), pod('team', 'writer', { project: 'demo' }), { capability: { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } } }), status.INVALID_ARGUMENT, /block/);
    await rejectsWith(publish(newTarget(), {}, { volumeId: 'not a volume' }), status.NOT_FOUND);
    await rejectsWith(publish(newTarget(), pod('team', 'writer')), status.INVALID_ARGUMENT, /"project"/);
  });

  test('concurrent publishes of one target: one mounts, the others are ABORTED', async () => {
    const target = newTarget();
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => publish(target, pod('team', 'writer', { project: 'demo' }))));
    const codes = results.map((r) => (r.status === 'fulfilled' ? 'OK' : status[(r.reason as ServiceError).code]));
    assert.ok(codes.includes('OK'), `codes: ${codes.join(', ')}`);
    assert.ok(codes.includes('ABORTED'), `codes: ${codes.join(', ')}`);
    assert.deepEqual(codes.filter((c) => c !== 'OK' && c !== 'ABORTED'), []);
    assert.ok(await mountAt(target));
    await unpublish(target);
  });
});

describe('targets: only what this plugin published is ever unmounted or removed', () => {
  const exec = promisify(execFile);

  test('unpublishing a target never published is OK and touches nothing: a foreign tmpfs stays, an empty directory stays', async () => {
    const foreign = newTarget();
    const empty = newTarget();
    await mkdir(foreign, { recursive: true });
    await mkdir(empty, { recursive: true });
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'lhb-foreign', foreign]);
    try {
      await writeFile(join(foreign, 'theirs.txt'), 'not yours\n');
      await unpublish(foreign);
      await unpublish(empty);
      assert.equal((await mountAt(foreign))?.fstype, 'tmpfs', 'the foreign tmpfs is still mounted');
      assert.equal(await readFile(join(foreign, 'theirs.txt'), 'utf8'), 'not yours\n');
      assert.ok((await stat(empty)).isDirectory(), 'the never-published directory is still there');
    } finally {
      await detachAllUnder(foreign);
    }
  });

  test('publishing onto a live mount of someone else is FAILED_PRECONDITION and leaves it mounted', async () => {
    const foreign = newTarget();
    await mkdir(foreign, { recursive: true });
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'lhb-foreign', foreign]);
    try {
      await rejectsWith(publish(foreign, pod('team', 'writer', { project: 'demo' })), status.FAILED_PRECONDITION, /already a mount point \(tmpfs\)/);
      assert.equal((await mountAt(foreign))?.fstype, 'tmpfs');
    } finally {
      await detachAllUnder(foreign);
    }
  });

  test('unpublish with another volume id is NOT_FOUND and the published volume stays mounted', async () => {
    const target = newTarget();
    await publish(target, pod('team', 'writer', { project: 'demo' }), { volumeId: 'csi-mine' });
    await rejectsWith(unpublish(target, 'csi-someone-else'), status.NOT_FOUND, /volume csi-mine is/);
    assert.ok(await mountAt(target));
    await unpublish(target, 'csi-mine');
    assert.equal(await mountAt(target), undefined);
  });

  test('a relative target is INVALID_ARGUMENT; nothing is created under the plugin\'s working directory', async () => {
    const name = `lhb-relative-${process.pid}-${Date.now()}`;
    // The plugin runs in this process's working directory.
    const relatives = [name, `../../${name}`];
    try {
      for (const target of relatives) {
        await rejectsWith(publish(target, pod('team', 'writer', { project: 'demo' })), status.INVALID_ARGUMENT, /must be an absolute path/);
        await assert.rejects(stat(resolve(target)), { code: 'ENOENT' });
      }
    } finally {
      for (const target of relatives) {
        await detachAllUnder(resolve(target));
        await rm(resolve(target), { recursive: true, force: true });
      }
    }
  });

  test('a symbolic link as the target or on its path is FAILED_PRECONDITION; nothing is mounted at its destination', async () => {
    const destination = newTarget();
    await mkdir(destination, { recursive: true });
    const linked = newTarget();
    await symlink(destination, linked);
    const linkedParent = newTarget();
    await symlink(destination, linkedParent);
    const viaLink = join(linkedParent, 'mount');
    for (const target of [linked, viaLink]) {
      await rejectsWith(publish(target, pod('team', 'writer', { project: 'demo' })), status.FAILED_PRECONDITION, /is a symbolic link/);
    }
    assert.equal(await mountAt(destination), undefined);
    assert.equal(await mountAt(join(destination, 'mount')), undefined);
    assert.deepEqual(await readdir(destination), []);
  });
});

describe('the speed layer at /.bridge/validate', () => {
  async function ask(target: string, request: object): Promise<{ decision: string; rule?: string }> {
    const handle = await open(join(target, '.bridge', 'validate'), 'r+');
    try {
      await handle.write(`${JSON.stringify(request)}\n`);
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
      return JSON.parse(buffer.subarray(0, bytesRead).toString('utf8')) as { decision: string; rule?: string };
    } finally {
      await handle.close();
    }
  }

  test('judges absolute paths against workspacePath/current, where the containers see the project', async () => {
    const target = newTarget();
    await publish(target, pod('team', 'writer', { project: 'demo', workspacePath: '/workspace/' }));
    try {
      const inside = await ask(target, { agent: 'a1', tool: 'Write', input: { file_path: '/workspace/current/x', content: 'x' } });
      assert.equal(inside.decision, 'allow', JSON.stringify(inside));
      const destroy = await ask(target, { agent: 'a1', tool: 'Bash', input: { command: 'rm -rf /' } });
      assert.equal(destroy.decision, 'deny', JSON.stringify(destroy));
    } finally {
      await unpublish(target);
    }
  });

  test('a relative, NUL-bearing or overlong workspacePath, or a misspelled key, is INVALID_ARGUMENT', async () => {
    for (const workspacePath of ['workspace', '', '/work\0space', `/${'w'.repeat(4096)}`]) {
      await rejectsWith(publish(newTarget(), pod('team', 'writer', { project: 'demo', workspacePath })), status.INVALID_ARGUMENT, /"workspacePath" must be an absolute path/);
    }
    await rejectsWith(publish(newTarget(), pod('team', 'writer', { project: 'demo', workspacepath: '/workspace' })), status.INVALID_ARGUMENT, /"workspacepath"/);
  });
});

describe('health', () => {
  test('stats of a live mount report usage; of a dead mount an abnormal condition, quickly', async () => {
    const target = newTarget();
    const volumeId = 'team/demo';
    await publish(target, pod('team', 'writer', { project: 'demo' }), { volumeId });
    const healthy = await csi.call<{ usage: unknown[]; volume_condition: { abnormal: boolean } }>('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: target });
    assert.equal(healthy.volume_condition.abnormal, false);
    assert.ok(healthy.usage.length > 0);

    // Abort the FUSE connection as the kernel does when the daemon is gone or wedged.
    await ensureFuseControl();
    const minor = (await stat(target)).dev & 0xff;
    await writeFile(`/sys/fs/fuse/connections/${minor}/abort`, '1');
    const start = performance.now();
    const dead = await csi.call<{ usage: unknown[]; volume_condition: { abnormal: boolean; message: string } }>('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: target }, 10_000);
    assert.ok(performance.now() - start < 5000, 'stats must not hang on a dead mount');
    assert.equal(dead.volume_condition.abnormal, true);
    assert.match(dead.volume_condition.message, /not connected|did not answer/i);
    await unpublish(target, volumeId);
    assert.equal(await mountAt(target), undefined);
  });

  test('a dead mount left at the target by a killed plugin is detached and the volume served again', async () => {
    const target = newTarget();
    // No keeper, as when it died too: the connection ends with the plugin.
    const previous = await startPlugin({ socket: join(fixture.dir, 'previous.sock'), stateDir: join(fixture.dir, 'previous-state'), store: redis.url, args: ['--no-custody'] });
    const client = csiClients(CSI, previous.socket);
    try {
      await client.call('Node', 'NodePublishVolume', { volume_id: 'team/leftover', target_path: target, volume_capability: MOUNT_RW, volume_context: {} });
      await writeFile(join(target, 'current', 'left.txt'), 'before the crash\n');
    } finally {
      client.close();
      await previous.kill('SIGKILL');
    }
    await assert.rejects(stat(join(target, 'current')), { code: 'ENOTCONN' });
    await publish(target, {}, { volumeId: 'team/leftover' });
    assert.equal(await readFile(join(target, 'current', 'left.txt'), 'utf8'), 'before the crash\n');
    await unpublish(target, 'team/leftover');
    assert.equal(await mountAt(target), undefined);
  });

  test('a client sending the socket path as :authority (kubelet < 1.26) is served', async () => {
    const old = csiClients(CSI, fixture.plugin.socket, { authority: '/var/lib/kubelet/plugins/bridge.lighthouse.dev/csi.sock' });
    try {
      const info = await old.call<{ name: string }>('Identity', 'GetPluginInfo', {});
      assert.equal(info.name, 'bridge.lighthouse.dev');
      const probe = await old.call<{ ready: { value: boolean } }>('Identity', 'Probe', {});
      assert.equal(probe.ready.value, true);
    } finally {
      old.close();
    }
  });
});

async function ensureFuseControl(): Promise<void> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  if (!mounts.includes(' /sys/fs/fuse/connections ')) {
    await promisify(execFile)('mount', ['-t', 'fusectl', 'fusectl', '/sys/fs/fuse/connections']);
  }
}

describe('plugin options', () => {
  test('--require-access-config refuses projects without one; /metrics counts calls and mounts', async () => {
    const strict = await startPlugin({
      socket: join(fixture.dir, 'strict.sock'),
      stateDir: join(fixture.dir, 'strict-state'),
      store: redis.url,
      args: ['--require-access-config', '--metrics-port', '0'],
    });
    const client = csiClients(CSI, strict.socket);
    const target = newTarget();
    const request = (project: string): object => ({
      volume_id: 'csi-strict',
      target_path: target,
      volume_capability: MOUNT_RW,
      volume_context: pod('team', 'writer', { project }),
    });
    try {
      await rejectsWith(client.call('Node', 'NodePublishVolume', request('open')), status.PERMISSION_DENIED, /no access configuration/);
      await client.call('Node', 'NodePublishVolume', request('secret'));
      const port = /"message":"metrics serving","port":(\d+)/.exec(strict.output())?.[1];
      assert.ok(port, `no metrics port in the log:\n${strict.output()}`);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(metrics, /lighthouse_bridge_csi_rpc_duration_seconds_count\{method="NodePublishVolume",code="PERMISSION_DENIED"\} 1/);
      assert.match(metrics, /lighthouse_bridge_csi_rpc_duration_seconds_count\{method="NodePublishVolume",code="OK"\} 1/);
      assert.match(metrics, /^lighthouse_bridge_mounts 1$/m);
      await client.call('Node', 'NodeUnpublishVolume', { volume_id: 'csi-strict', target_path: target });
    } finally {
      client.close();
      await strict.kill('SIGKILL');
    }
  });
});
