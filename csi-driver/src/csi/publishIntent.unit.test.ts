import { status } from '@grpc/grpc-js';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { toStatus } from './errors.js';
import type { NodePublishVolumeRequest, VolumeCapability } from './messages.js';
import { publishIntent } from './publishIntent.js';

/** What a NodePublishVolume asks for, read without gRPC, disk, Redis or FUSE. */
const RW: VolumeCapability = { access_type: 'mount', mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const POD = {
  'csi.storage.k8s.io/pod.namespace': 'team',
  'csi.storage.k8s.io/serviceAccount.name': 'agent',
};

function request(overrides: Partial<NodePublishVolumeRequest> = {}): NodePublishVolumeRequest {
  return { volume_id: 'team/demo', staging_target_path: '', target_path: '/var/lib/kubelet/pods/p/volumes/v/mount', volume_capability: { ...RW }, readonly: false, volume_context: {}, ...overrides };
}

/** The gRPC status the server would answer for the request. */
function refusal(r: NodePublishVolumeRequest): { code: string; details: string } {
  try {
    publishIntent(r, 'node-1');
  } catch (error) {
    const mapped = toStatus(error);
    return { code: status[mapped.code], details: mapped.details };
  }
  assert.fail('the request was accepted');
}

describe('publishIntent', () => {
  test('a persistent volume: project from the id, written as the node without pod info', () => {
    assert.deepEqual(publishIntent(request({ volume_id: `team/demo/${'a'.repeat(32)}` }), 'node-1'), {
      volumeId: `team/demo/${'a'.repeat(32)}`,
      target: '/var/lib/kubelet/pods/p/volumes/v/mount',
      project: { namespace: 'team', name: 'demo' },
      pod: undefined,
      readOnly: false,
      ephemeral: false,
      workspacePath: undefined,
      actor: 'node:node-1',
    });
  });

  test('an ephemeral volume: project from the attributes in the pod namespace, written as the pod', () => {
    const intent = publishIntent(
      request({ volume_id: 'csi-0123', volume_context: { ...POD, 'csi.storage.k8s.io/ephemeral': 'true', 'csi.storage.k8s.io/pod.name': 'agent-0', project: 'demo', workspacePath: '/workspace//x/' } }),
      'node-1',
    );
    assert.deepEqual(intent.project, { namespace: 'team', name: 'demo' });
    assert.deepEqual(intent.pod, { namespace: 'team', serviceAccount: 'agent' });
    assert.equal(intent.ephemeral, true);
    assert.equal(intent.actor, 'pod:team/agent-0');
    assert.equal(intent.workspacePath, '/workspace/x/');
  });

  test('without a pod name the actor is the service account', () => {
    assert.equal(publishIntent(request({ volume_context: POD }), 'node-1').actor, 'serviceaccount:team/agent');
  });

  test('read-only from the request flag or from a reader-only access mode', () => {
    assert.equal(publishIntent(request({ readonly: true }), 'n').readOnly, true);
    assert.equal(publishIntent(request({ volume_capability: { ...RW, access_mode: { mode: 'MULTI_NODE_READER_ONLY' } } }), 'n').readOnly, true);
  });

  test('one target has one spelling: doubled and trailing slashes and "." go', () => {
    assert.equal(publishIntent(request({ target_path: '/var/lib//kubelet/./pods/p/' }), 'n').target, '/var/lib/kubelet/pods/p');
  });

  const refused: Array<[string, Partial<NodePublishVolumeRequest>, string, RegExp]> = [
    ['no volume_id', { volume_id: '' }, 'INVALID_ARGUMENT', /volume_id is required/],
    ['a relative target', { target_path: 'pods/p' }, 'INVALID_ARGUMENT', /must be an absolute path/],
    ['".." in the target', { target_path: '/var/lib/../etc' }, 'INVALID_ARGUMENT', /must not contain "\.\."/],
    ['a staging path', { staging_target_path: '/staging' }, 'INVALID_ARGUMENT', /does not stage volumes/],
    ['no capability', { volume_capability: null }, 'INVALID_ARGUMENT', /volume_capability is required/],
    ['a block volume', { volume_capability: { access_type: 'block', block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } } }, 'INVALID_ARGUMENT', /block volumes are not supported/],
    ['an unknown attribute', { volume_context: { readonly: 'true' } }, 'INVALID_ARGUMENT', /unknown volume attribute "readonly"/],
    ['ephemeral neither true nor false', { volume_context: { 'csi.storage.k8s.io/ephemeral': 'yes' } }, 'INVALID_ARGUMENT', /must be "true" or "false"/],
    ['a volume id that is not ours', { volume_id: 'pv-0123' }, 'NOT_FOUND', /not a Lighthouse Bridge volume id/],
    ['attributes naming another project', { volume_context: { project: 'other' } }, 'INVALID_ARGUMENT', /name project team\/other but volume team\/demo/],
    ['an ephemeral volume without a project', { volume_context: { 'csi.storage.k8s.io/ephemeral': 'true' } }, 'INVALID_ARGUMENT', /"project" attribute is required/],
    ['an invalid project name', { volume_context: { 'csi.storage.k8s.io/ephemeral': 'true', project: 'Not_A_Name' } }, 'INVALID_ARGUMENT', /Not_A_Name/],
    ['a relative workspacePath', { volume_context: { workspacePath: 'workspace' } }, 'INVALID_ARGUMENT', /"workspacePath" must be an absolute path/],
  ];
  for (const [name, overrides, code, details] of refused) {
    test(`refuses ${name} with ${code}`, () => {
      const answer = refusal(request(overrides));
      assert.equal(answer.code, code);
      assert.match(answer.details, details);
    });
  }
});
