import type { ProjectId } from '@lighthouse-bridge/core';
import type { PodIdentity } from './access.js';
import { invalidArgument, notFound } from './errors.js';
import type { NodePublishVolumeRequest } from './messages.js';
import { checkedPath, checkVolumeId } from './targetPath.js';
import {
  ATTR_EPHEMERAL,
  ATTR_POD_NAME,
  ATTR_POD_NAMESPACE,
  ATTR_PROJECT,
  ATTR_SERVICE_ACCOUNT,
  capabilityProblem,
  checkAttributes,
  parseVolumeId,
  projectFrom,
  readOnlyMode,
  workspacePathFrom,
} from './volumes.js';

/** What a NodePublishVolume asks for, checked: everything the node needs before it looks at the disk. */
export interface PublishIntent {
  volumeId: string;
  /** Normalized, so one target has one publish record. */
  target: string;
  project: ProjectId;
  /** Kubelet's pod info, when it sent both namespace and service account. */
  pod: PodIdentity | undefined;
  readOnly: boolean;
  ephemeral: boolean;
  workspacePath: string | undefined;
  /** Who events written through the mount name as their actor. */
  actor: string;
}

/**
 * Reads a NodePublishVolume request without touching the disk, the store or the network. A request
 * that cannot be served throws a `CsiError` (or `InvalidProjectIdError`) for the server to map.
 */
export function publishIntent(request: NodePublishVolumeRequest, nodeId: string): PublishIntent {
  checkVolumeId(request.volume_id);
  const target = checkedPath('target_path', request.target_path);
  // Kubelet sends one only to plugins that advertise STAGE_UNSTAGE_VOLUME; we stage nothing.
  if (request.staging_target_path) throw invalidArgument('staging_target_path must be empty: this driver does not stage volumes');
  const capability = request.volume_capability;
  if (!capability) throw invalidArgument('volume_capability is required');
  const problem = capabilityProblem(capability);
  if (problem) throw invalidArgument(problem);
  const context = request.volume_context;
  checkAttributes(context, 'volume attribute');

  const pod = podOf(context);
  const ephemeral = context[ATTR_EPHEMERAL] === 'true';
  return {
    volumeId: request.volume_id,
    target,
    project: ephemeral ? projectFrom(context, pod?.namespace) : persistentProject(request.volume_id, context),
    pod,
    readOnly: request.readonly || readOnlyMode(capability),
    ephemeral,
    workspacePath: workspacePathFrom(context),
    actor: actorOf(context, pod, nodeId),
  };
}

/** A persistent volume's project comes from its id; attributes, when given, must agree. */
function persistentProject(volumeId: string, context: Record<string, string>): ProjectId {
  const parsed = parseVolumeId(volumeId);
  if (!parsed) throw notFound(`volume ${volumeId} is not a Lighthouse Bridge volume id (<namespace>/<project>[/<key>])`);
  if (context[ATTR_PROJECT] !== undefined) {
    const named = projectFrom(context, parsed.project.namespace);
    if (named.namespace !== parsed.project.namespace || named.name !== parsed.project.name) {
      throw invalidArgument(`volume attributes name project ${named.namespace}/${named.name} but volume ${volumeId} is ${parsed.project.namespace}/${parsed.project.name}`);
    }
  }
  return parsed.project;
}

function podOf(context: Record<string, string>): PodIdentity | undefined {
  const namespace = context[ATTR_POD_NAMESPACE];
  const serviceAccount = context[ATTR_SERVICE_ACCOUNT];
  return namespace && serviceAccount ? { namespace, serviceAccount } : undefined;
}

/** Events written through the mount name the pod when kubelet told us which one it is. */
function actorOf(context: Record<string, string>, pod: PodIdentity | undefined, nodeId: string): string {
  const podName = context[ATTR_POD_NAME];
  if (pod && podName) return `pod:${pod.namespace}/${podName}`;
  if (pod) return `serviceaccount:${pod.namespace}/${pod.serviceAccount}`;
  return `node:${nodeId}`;
}
