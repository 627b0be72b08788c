import { status, type ServiceError } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mountTable } from '@lighthouse-bridge/csi-driver';
import { loadCsiPackage } from '@lighthouse-bridge/csi-driver/csi';
import { startPluginFixture, type CsiClients, type PluginFixture, type ServiceName } from '@lighthouse-bridge/test/csiPlugin';
import { door, type Case } from './table.js';

/**
 * The CSI door: malformed and hostile requests to the real node plugin over its unix socket, as a
 * compromised CO, a confused sidecar or a pod that planted things under kubelet's directory would
 * send them. Each row gets its exact status and message, and the node must look exactly as before:
 * the same mounts (a foreign tmpfs and one published volume), the same files and directories under
 * the test root, the same publish and volume records.
 */
const exec = promisify(execFile);

let fixture: PluginFixture;
let csi: CsiClients;

/** Paths the rows aim at, under a stand-in for kubelet's pods directory. */
const at = (...parts: string[]): string => join(fixture.dir, 'pods', ...parts);
const PUBLISHED_ID = 'team/demo';

const RW = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const POD = {
  'csi.storage.k8s.io/ephemeral': 'true',
  'csi.storage.k8s.io/pod.namespace': 'team',
  'csi.storage.k8s.io/pod.name': 'agent-0',
  'csi.storage.k8s.io/pod.uid': '6d3c1f0e-0000-4000-8000-000000000001',
  'csi.storage.k8s.io/serviceAccount.name': 'agent',
  project: 'demo',
};

interface CsiCase extends Case {
  service: ServiceName;
  method: string;
  request: () => object;
  code: status;
  /** A fragment of the status details; rows answered OK have none. */
  message?: RegExp;
}

const publishTo = (target: () => string, overrides: object = {}): (() => object) => () => ({
  volume_id: 'csi-0123456789abcdef',
  target_path: target(),
  volume_capability: RW,
  readonly: false,
  volume_context: POD,
  ...overrides,
});
const withContext = (extra: Record<string, string>): (() => object) => publishTo(() => at('fresh', 'mount'), { volume_context: { ...POD, ...extra } });
const unpublishAt = (target: () => string, volumeId = 'csi-0123456789abcdef'): (() => object) => () => ({ volume_id: volumeId, target_path: target() });
const statsAt = (path: () => string, volumeId = PUBLISHED_ID): (() => object) => () => ({ volume_id: volumeId, volume_path: path() });

const { INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, ABORTED, OK } = status;

const table: CsiCase[] = [
  // NodePublishVolume: ids and paths
  { name: 'publish: no volume_id', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('fresh', 'mount'), { volume_id: '' }), code: INVALID_ARGUMENT, message: /volume_id is required/ },
  { name: 'publish: NUL in volume_id', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('fresh', 'mount'), { volume_id: 'team/demo\0x' }), code: INVALID_ARGUMENT, message: /volume_id must not contain control characters/ },
  { name: 'publish: newline in volume_id', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('fresh', 'mount'), { volume_id: 'csi-1\n{"level":"error"}' }), code: INVALID_ARGUMENT, message: /control characters/ },
  { name: 'publish: no target_path', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => ''), code: INVALID_ARGUMENT, message: /target_path is required/ },
  { name: 'publish: ../../x resolved against the plugin cwd', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => '../../lhb-adversarial-x'), code: INVALID_ARGUMENT, message: /target_path must be an absolute path/ },
  { name: 'publish: relative target', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => 'pods/x/mount'), code: INVALID_ARGUMENT, message: /must be an absolute path/ },
  { name: 'publish: NUL in target_path', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => `${at('fresh')}\0/mount`), code: INVALID_ARGUMENT, message: /must not contain NUL bytes/ },
  { name: 'publish: target of 4096 bytes (PATH_MAX)', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => `${at('fresh')}/${'d/'.repeat(2100)}`.slice(0, 4096)), code: INVALID_ARGUMENT, message: /paths are limited to 4095 \(PATH_MAX\)/ },
  { name: 'publish: component of 256 bytes (NAME_MAX)', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('fresh', 'm'.repeat(256))), code: INVALID_ARGUMENT, message: /component of 256 bytes.*NAME_MAX/ },
  { name: 'publish: .. inside an absolute target', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => `${at('fresh')}/../../../etc/mount`), code: INVALID_ARGUMENT, message: /must not contain "\.\." components/ },
  { name: 'publish: the root directory', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => '//'), code: INVALID_ARGUMENT, message: /must not be the root directory/ },
  // NodePublishVolume: what is already on disk at the target
  { name: 'publish: target is a symlink', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('link')), code: FAILED_PRECONDITION, message: /link is a symbolic link/ },
  { name: 'publish: a symlink on the target path (planted hostPath)', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('linkdir', 'mount')), code: FAILED_PRECONDITION, message: /linkdir is a symbolic link/ },
  { name: 'publish: target is a regular file', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('file')), code: FAILED_PRECONDITION, message: /file exists and is not a directory/ },
  { name: 'publish: target below a regular file', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('file', 'mount')), code: FAILED_PRECONDITION, message: /file is not a directory/ },
  { name: 'publish: target is a non-empty directory', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('full')), code: FAILED_PRECONDITION, message: /full is not empty/ },
  { name: 'publish: target is a foreign tmpfs', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('foreign')), code: FAILED_PRECONDITION, message: /already a mount point \(tmpfs\) that this plugin does not serve/ },
  { name: 'publish: a staging_target_path to a driver that stages nothing', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('fresh', 'mount'), { staging_target_path: '/etc' }), code: INVALID_ARGUMENT, message: /staging_target_path must be empty/ },
  // NodePublishVolume: capability and attributes
  { name: 'publish: no volume_capability', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('fresh', 'mount'), { volume_capability: null }), code: INVALID_ARGUMENT, message: /volume_capability is required/ },
  { name: 'publish: block volume', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('fresh', 'mount'), { volume_capability: { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } } }), code: INVALID_ARGUMENT, message: /block volumes are not supported/ },
  { name: 'publish: access mode UNKNOWN', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('fresh', 'mount'), { volume_capability: { mount: {}, access_mode: { mode: 'UNKNOWN' } } }), code: INVALID_ARGUMENT, message: /needs an access mode/ },
  { name: 'publish: misspelled attribute readonly', service: 'Node', method: 'NodePublishVolume', request: withContext({ readonly: 'true' }), code: INVALID_ARGUMENT, message: /unknown volume attribute "readonly"/ },
  { name: 'publish: project ../etc', service: 'Node', method: 'NodePublishVolume', request: withContext({ project: '../etc' }), code: INVALID_ARGUMENT, message: /\.\.\/etc/ },
  { name: 'publish: ephemeral TRUE', service: 'Node', method: 'NodePublishVolume', request: withContext({ 'csi.storage.k8s.io/ephemeral': 'TRUE' }), code: INVALID_ARGUMENT, message: /ephemeral" must be "true" or "false"/ },
  { name: 'publish: pod namespace with a slash', service: 'Node', method: 'NodePublishVolume', request: withContext({ 'csi.storage.k8s.io/pod.namespace': 'team/other' }), code: INVALID_ARGUMENT, message: /pod.namespace" must be a namespace name/ },
  { name: 'publish: pod name with a newline (forged actor)', service: 'Node', method: 'NodePublishVolume', request: withContext({ 'csi.storage.k8s.io/pod.name': 'agent\nactor: root' }), code: INVALID_ARGUMENT, message: /pod.name" must be a pod name/ },
  { name: 'publish: service account of 300 characters', service: 'Node', method: 'NodePublishVolume', request: withContext({ 'csi.storage.k8s.io/serviceAccount.name': 'a'.repeat(300) }), code: INVALID_ARGUMENT, message: /serviceAccount.name" must be a service account name/ },
  { name: 'publish: relative workspacePath', service: 'Node', method: 'NodePublishVolume', request: withContext({ workspacePath: 'workspace' }), code: INVALID_ARGUMENT, message: /"workspacePath" must be an absolute path/ },
  { name: 'publish: persistent volume id that is not ours', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('fresh', 'mount'), { volume_id: '../../etc/passwd', volume_context: {} }), code: NOT_FOUND, message: /is not a Lighthouse Bridge volume id/ },
  { name: 'publish: volume id and project attribute disagree', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('fresh', 'mount'), { volume_id: 'team/demo', volume_context: { project: 'secret' } }), code: INVALID_ARGUMENT, message: /name project team\/secret but volume team\/demo/ },
  { name: 'publish: another volume onto a published target', service: 'Node', method: 'NodePublishVolume', request: publishTo(() => at('published'), { volume_id: 'team/other', volume_context: {} }), code: ALREADY_EXISTS, message: /already has volume team\/demo published/ },
  { name: 'publish: a service account the project does not list', service: 'Node', method: 'NodePublishVolume', request: withContext({ project: 'secret' }), code: PERMISSION_DENIED, message: /team\/agent may not mount/ },
  // NodeUnpublishVolume
  { name: 'unpublish: no volume_id', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => at('published'), ''), code: INVALID_ARGUMENT, message: /volume_id is required/ },
  { name: 'unpublish: no target_path', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => ''), code: INVALID_ARGUMENT, message: /target_path is required/ },
  { name: 'unpublish: relative target', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => '../../pods/published', PUBLISHED_ID), code: INVALID_ARGUMENT, message: /must be an absolute path/ },
  { name: 'unpublish: NUL in target', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => `${at('published')}\0`, PUBLISHED_ID), code: INVALID_ARGUMENT, message: /must not contain NUL bytes/ },
  { name: 'unpublish: .. leading back to the published target', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => `${at('full')}/../published`, PUBLISHED_ID), code: INVALID_ARGUMENT, message: /"\.\." components/ },
  { name: 'unpublish: a foreign tmpfs is left mounted', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => at('foreign')), code: OK },
  { name: 'unpublish: a never-published empty directory is left', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => at('empty')), code: OK },
  { name: 'unpublish: a symlink is left, and its destination', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => at('link')), code: OK },
  { name: 'unpublish: a regular file is left', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => at('file')), code: OK },
  { name: 'unpublish: the published target under another volume id', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => at('published'), 'team/other'), code: NOT_FOUND, message: /volume team\/other is not published at .*published \(volume team\/demo is\)/ },
  // NodeGetVolumeStats
  { name: 'stats: no volume_path', service: 'Node', method: 'NodeGetVolumeStats', request: statsAt(() => ''), code: INVALID_ARGUMENT, message: /volume_path is required/ },
  { name: 'stats: relative volume_path', service: 'Node', method: 'NodeGetVolumeStats', request: statsAt(() => 'pods/published'), code: NOT_FOUND, message: /not published there: volume_path must be an absolute path/ },
  { name: 'stats: a foreign tmpfs', service: 'Node', method: 'NodeGetVolumeStats', request: statsAt(() => at('foreign')), code: NOT_FOUND, message: /volume team\/demo is not published at/ },
  { name: 'stats: the published target under another volume id', service: 'Node', method: 'NodeGetVolumeStats', request: statsAt(() => at('published'), 'team/other'), code: NOT_FOUND, message: /volume team\/other is not published at/ },
  { name: 'stats: NUL in volume_path', service: 'Node', method: 'NodeGetVolumeStats', request: statsAt(() => `${at('published')}\0`), code: NOT_FOUND, message: /must not contain NUL bytes/ },
  { name: 'stats: escape sequence in volume_id', service: 'Node', method: 'NodeGetVolumeStats', request: statsAt(() => at('published'), 'team/demo\u001b[2J'), code: INVALID_ARGUMENT, message: /volume_id must not contain control characters/ },
  { name: 'unpublish: target of 5000 bytes', service: 'Node', method: 'NodeUnpublishVolume', request: unpublishAt(() => `/${'u'.repeat(200)}`.repeat(25), PUBLISHED_ID), code: INVALID_ARGUMENT, message: /5025 bytes long; paths are limited to 4095/ },
  // Controller and Identity
  { name: 'create: no name', service: 'Controller', method: 'CreateVolume', request: () => ({ name: '', volume_capabilities: [RW], parameters: { project: 'demo' } }), code: INVALID_ARGUMENT, message: /name is required/ },
  { name: 'create: name with control characters', service: 'Controller', method: 'CreateVolume', request: () => ({ name: 'pvc-\u0007', volume_capabilities: [RW], parameters: { project: 'demo' } }), code: INVALID_ARGUMENT, message: /without control characters/ },
  { name: 'create: name of 129 characters', service: 'Controller', method: 'CreateVolume', request: () => ({ name: 'p'.repeat(129), volume_capabilities: [RW], parameters: { project: 'demo' } }), code: INVALID_ARGUMENT, message: /at most 128 characters/ },
  { name: 'create: from a snapshot', service: 'Controller', method: 'CreateVolume', request: () => ({ name: 'pvc-snap', volume_capabilities: [RW], parameters: { project: 'demo' }, volume_content_source: { snapshot: { snapshot_id: 'x' } } }), code: INVALID_ARGUMENT, message: /cannot be created from snapshots/ },
  { name: 'create: unknown parameter', service: 'Controller', method: 'CreateVolume', request: () => ({ name: 'pvc-param', volume_capabilities: [RW], parameters: { project: 'demo', mountOptions: 'suid' } }), code: INVALID_ARGUMENT, message: /unknown parameter "mountOptions"/ },
  { name: 'create: required above limit', service: 'Controller', method: 'CreateVolume', request: () => ({ name: 'pvc-cap', volume_capabilities: [RW], parameters: { project: 'demo' }, capacity_range: { required_bytes: 10, limit_bytes: 5 } }), code: INVALID_ARGUMENT, message: /required_bytes exceeds limit_bytes/ },
  { name: 'create: project in another namespace than the PVC says', service: 'Controller', method: 'CreateVolume', request: () => ({ name: 'pvc-ns', volume_capabilities: [RW], parameters: { project: 'team/demo', namespace: 'other' } }), code: INVALID_ARGUMENT, message: /disagree/ },
  { name: 'delete: no volume_id', service: 'Controller', method: 'DeleteVolume', request: () => ({ volume_id: '' }), code: INVALID_ARGUMENT, message: /volume_id is required/ },
  { name: 'list: a forged starting_token', service: 'Controller', method: 'ListVolumes', request: () => ({ starting_token: '../../volumes', max_entries: 1 }), code: ABORTED, message: /invalid starting_token/ },
  { name: 'list: negative max_entries', service: 'Controller', method: 'ListVolumes', request: () => ({ max_entries: -1 }), code: INVALID_ARGUMENT, message: /must not be negative/ },
  { name: 'validate: a volume that does not exist', service: 'Controller', method: 'ValidateVolumeCapabilities', request: () => ({ volume_id: 'team/demo/00000000000000000000000000000000', volume_capabilities: [RW] }), code: NOT_FOUND, message: /does not exist/ },
  { name: 'identity: Probe carrying fields it does not know', service: 'Identity', method: 'Probe', request: () => ({ volume_id: PUBLISHED_ID, target_path: '/' }), code: OK },
];

/** Everything a row must leave as it was: mounts, files and directories, the plugin's records. */
async function world(): Promise<Record<string, string>> {
  const snapshot: Record<string, string> = {};
  const mounted = await mountTable();
  for (const [point, fstype] of mounted) if (point.startsWith(`${fixture.dir}/`)) snapshot[`mount ${point}`] = fstype;
  const walk = async (path: string): Promise<void> => {
    const info = await lstat(path);
    const kind = info.isSymbolicLink() ? 'symlink' : info.isDirectory() ? 'dir' : info.isSocket() ? 'socket' : 'file';
    // A mount's custody journal grows with every open of its files (this snapshot's own reads too):
    // its presence is compared, its content is the live mount's, not a record a request may change.
    const journal = path.startsWith(join(fixture.dir, 'state', 'mounts') + '/');
    snapshot[`entry ${path}`] = kind === 'file' && !journal ? `file ${await readFile(path, 'utf8')}` : kind;
    // Never into a mount: the published FUSE volume and the foreign tmpfs are compared by their
    // mount entry; the tmpfs' one file is read directly below.
    if (kind === 'dir' && (path === fixture.dir || !mounted.has(path))) {
      for (const name of await readdir(path)) await walk(join(path, name));
    }
  };
  await walk(fixture.dir);
  // Read, not required: a row that loses one must fail on its own, not make every later row fail.
  snapshot['foreign file'] = await readFile(at('foreign', 'theirs.txt'), 'utf8').catch((error: Error) => error.message);
  snapshot['published file'] = await readFile(join(at('published'), 'current', 'work.txt'), 'utf8').catch((error: Error) => error.message);
  return snapshot;
}

before(async () => {
  fixture = await startPluginFixture(loadCsiPackage().grpcObject, 'lhb-adversarial-csi-');
  csi = fixture.csi;
  await fixture.redis.cli(['SET', 'lhb:{team/secret}:config', JSON.stringify({ access: { readWrite: ['team/writer'], readOnly: [], annotate: [] } })]);
  for (const name of ['fresh', 'empty', 'full', 'foreign', 'destination']) await mkdir(at(name), { recursive: true });
  await writeFile(at('full', 'kept.txt'), 'someone else\'s\n');
  await writeFile(at('file'), 'a regular file\n');
  await symlink(at('destination'), at('link'));
  await symlink(at('destination'), at('linkdir'));
  await exec('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'lhb-foreign', at('foreign')]);
  await writeFile(at('foreign', 'theirs.txt'), 'not the plugin\'s\n');
  await csi.call('Node', 'NodePublishVolume', { volume_id: PUBLISHED_ID, target_path: at('published'), volume_capability: RW, volume_context: {} });
  await writeFile(join(at('published'), 'current', 'work.txt'), 'acknowledged\n');
});

after(() => fixture?.stop());

door('CSI requests', table, async (row) => {
  const before = await world();
  const outcome = await csi.call(row.service, row.method, row.request()).then(
    () => ({ code: OK, details: '' }),
    (error: ServiceError) => ({ code: error.code, details: error.details }),
  );
  assert.equal(status[outcome.code], status[row.code], `details: ${outcome.details}`);
  if (row.message) assert.match(outcome.details, row.message);
  assert.deepEqual(await world(), before, 'nothing mounted, unmounted, created, deleted or recorded');
});
