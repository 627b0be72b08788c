import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { parseProjectId, type ProjectId } from '@lighthouse-bridge/core';
import { invalidArgument } from './errors.js';
import type { AccessModeName, VolumeCapability } from './messages.js';

/**
 * Volume ids are `<namespace>/<project>/<key>`: the node plugin learns the project from the id
 * alone (it never sees the controller's records), and the per-name key keeps volumes created under
 * different names distinct although they share one project. A static PV may use `<ns>/<project>`.
 * See ADR 0070.
 */
export function volumeKey(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 32);
}

export function formatVolumeId(project: ProjectId, key: string): string {
  return `${project.namespace}/${project.name}/${key}`;
}

const VOLUME_ID = /^([a-z0-9-]{1,63})\/([a-z0-9-]{1,63})(?:\/([0-9a-f]{32}))?$/;

/** The project and key a volume id names, or undefined when it is not one of ours. */
export function parseVolumeId(id: string): { project: ProjectId; key: string | undefined } | undefined {
  const m = VOLUME_ID.exec(id);
  if (!m) return undefined;
  try {
    return { project: parseProjectId(`${m[1]}/${m[2]}`), key: m[3] };
  } catch {
    return undefined;
  }
}

export const ATTR_PROJECT = 'project';
export const ATTR_NAMESPACE = 'namespace';
export const ATTR_EPHEMERAL = 'csi.storage.k8s.io/ephemeral';
export const ATTR_POD_NAMESPACE = 'csi.storage.k8s.io/pod.namespace';
export const ATTR_SERVICE_ACCOUNT = 'csi.storage.k8s.io/serviceAccount.name';
export const ATTR_POD_NAME = 'csi.storage.k8s.io/pod.name';
const ATTR_WORKSPACE_PATH = 'workspacePath';

/**
 * Volume attributes we accept. Unknown keys are refused rather than ignored: a typo such as
 * `readonly: "true"` would otherwise silently mount read-write.
 */
const ALLOWED_ATTRIBUTES = new Set([
  ATTR_PROJECT,
  ATTR_NAMESPACE,
  ATTR_EPHEMERAL,
  ATTR_POD_NAMESPACE,
  ATTR_SERVICE_ACCOUNT,
  ATTR_WORKSPACE_PATH,
  ATTR_POD_NAME,
  'csi.storage.k8s.io/pod.uid',
  'csi.storage.k8s.io/serviceAccount.tokens',
  // external-provisioner stamps every PV it creates with this.
  'storage.kubernetes.io/csiProvisionerIdentity',
]);

export function checkAttributes(attributes: Record<string, string>, what: string): void {
  const unknown = Object.keys(attributes).filter((key) => !ALLOWED_ATTRIBUTES.has(key));
  if (unknown.length > 0) {
    throw invalidArgument(`unknown ${what} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; allowed: project, namespace, workspacePath and the csi.storage.k8s.io pod-info keys`);
  }
  checkPodInfo(attributes);
}

/**
 * Kubelet's pod info decides access and names the actor of every event written through the mount,
 * so it must look like what kubelet sends: names Kubernetes accepts, and `true`/`false`.
 */
function checkPodInfo(attributes: Record<string, string>): void {
  const ephemeral = attributes[ATTR_EPHEMERAL];
  if (ephemeral !== undefined && ephemeral !== 'true' && ephemeral !== 'false') {
    throw invalidArgument(`"${ATTR_EPHEMERAL}" must be "true" or "false", got ${JSON.stringify(ephemeral.slice(0, 64))}`);
  }
  const names: Array<[string, (value: string) => boolean, string]> = [
    [ATTR_POD_NAMESPACE, isDnsLabel, 'a namespace name (DNS label)'],
    [ATTR_POD_NAME, isDnsSubdomain, 'a pod name (DNS subdomain)'],
    [ATTR_SERVICE_ACCOUNT, isDnsSubdomain, 'a service account name (DNS subdomain)'],
  ];
  for (const [key, valid, what] of names) {
    const value = attributes[key];
    if (value !== undefined && !valid(value)) throw invalidArgument(`"${key}" must be ${what}, got ${JSON.stringify(value.slice(0, 64))}`);
  }
}

const LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const isDnsLabel = (value: string): boolean => value.length <= 63 && LABEL.test(value);
const isDnsSubdomain = (value: string): boolean => value.length <= 253 && value.split('.').every((label) => LABEL.test(label));

/** PATH_MAX: a longer path cannot be where a container mounts anything. */
const WORKSPACE_PATH_MAX_BYTES = 4096;

/**
 * Where the pod's containers mount the volume (e.g. `/workspace`), when the volume says. Agents
 * name files by that path, so the speed layer judges theirs against `<workspacePath>/current`; the
 * kubelet target is a host path they never see.
 */
export function workspacePathFrom(attributes: Record<string, string>): string | undefined {
  const path = attributes[ATTR_WORKSPACE_PATH];
  if (path === undefined) return undefined;
  if (!path.startsWith('/') || path.includes('\0') || Buffer.byteLength(path) > WORKSPACE_PATH_MAX_BYTES) {
    throw invalidArgument(`"${ATTR_WORKSPACE_PATH}" must be an absolute path without NUL of at most ${WORKSPACE_PATH_MAX_BYTES} bytes, got ${JSON.stringify(path.slice(0, 256))}`);
  }
  return posix.normalize(path);
}

/** Parameters CreateVolume accepts: ours plus the PVC/PV names external-provisioner may add. */
const PROVISIONER_PARAMETERS = new Set(['csi.storage.k8s.io/pvc/name', 'csi.storage.k8s.io/pvc/namespace', 'csi.storage.k8s.io/pv/name']);

export function checkParameters(parameters: Record<string, string>): void {
  const unknown = Object.keys(parameters).filter((key) => key !== ATTR_PROJECT && key !== ATTR_NAMESPACE && !PROVISIONER_PARAMETERS.has(key));
  if (unknown.length > 0) {
    throw invalidArgument(`unknown parameter ${unknown.map((k) => JSON.stringify(k)).join(', ')}; allowed: project, namespace`);
  }
}

/** The project named by `project` (`NAME` or `NS/NAME`) and an optional `namespace`. */
export function projectFrom(attributes: Record<string, string>, defaultNamespace: string | undefined): ProjectId {
  const name = attributes[ATTR_PROJECT];
  if (!name) throw invalidArgument(`the "${ATTR_PROJECT}" attribute is required`);
  const namespace = attributes[ATTR_NAMESPACE];
  if (name.includes('/')) {
    const project = parseProjectId(name);
    if (namespace !== undefined && namespace !== project.namespace) {
      throw invalidArgument(`"project" ${name} and "namespace" ${namespace} disagree`);
    }
    return project;
  }
  return parseProjectId(`${namespace ?? defaultNamespace ?? 'default'}/${name}`);
}

const READ_ONLY_MODES: ReadonlySet<AccessModeName> = new Set(['SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY']);

/**
 * Any access mode works over a shared, event-sourced workspace; only the filesystem API does (no
 * block devices). `fs_type` is ignored: there is no filesystem to format, and provisioners fill it
 * with defaults such as ext4 that must not make the mount fail.
 */
export function capabilityProblem(capability: VolumeCapability): string | undefined {
  if (capability.access_type === 'block' || capability.block) return 'block volumes are not supported; use a filesystem (mount) volume';
  if (capability.access_type !== 'mount' && !capability.mount) return 'the volume capability needs an access type (mount)';
  const mode = capability.access_mode?.mode;
  if (!mode || mode === 'UNKNOWN') return 'the volume capability needs an access mode';
  return undefined;
}

export function readOnlyMode(capability: VolumeCapability): boolean {
  const mode = capability.access_mode?.mode;
  return mode !== undefined && READ_ONLY_MODES.has(mode);
}
