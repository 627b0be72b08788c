import { createHash } from 'node:crypto';
import { parseProjectId, type PolicyRule, type ProjectConfig, type ProjectId } from '@lighthouse-bridge/core';
import { canonicalJson } from '@lighthouse-bridge/core/speed-layer';

/** The BridgeProject custom resource as the operator reads it (crds/bridgeprojects...yaml). */
export const GROUP = 'bridge.lighthouse.dev';
export const VERSION = 'v1alpha1';
export const PLURAL = 'bridgeprojects';
export const KIND = 'BridgeProject';
export const FINALIZER = 'bridge.lighthouse.dev/cleanup';

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  resourceVersion: string;
  generation?: number;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  creationTimestamp?: string;
}

export interface BridgeProjectSpec {
  storage?: { retentionDays?: number; snapshotInterval?: number; deletionPolicy?: 'Retain' | 'Delete' };
  limits?: {
    maxFileBytes?: number;
    maxFiles?: number;
    maxProjectBytes?: number;
    maxPathBytes?: number;
    maxNameBytes?: number;
    maxAnnotationBytes?: number;
  };
  access?: { readWrite?: string[]; readOnly?: string[]; annotate?: string[] };
  policy?: {
    defaultDecision?: 'allow' | 'deny';
    escalationTimeoutSeconds?: number;
    mode?: 'extend' | 'replace';
    rules?: PolicyRule[];
  };
  monitoring?: {
    enabled?: boolean;
    slo?: Partial<Slo>;
  };
  restoreFrom?: RestoreSource;
}

/** An archive on a PersistentVolumeClaim in the project's namespace (the CRD's pattern keeps `path` inside the claim). */
export interface RestoreSource {
  pvc: string;
  path: string;
}

export interface Slo {
  validationP99Ms: number;
  fuseP99Ms: number;
  storeAppendP99Ms: number;
  errorRatePercent: number;
}

/** Same numbers as the CRD's defaults; used when a field is absent (e.g. an object stored before a default existed). */
export const DEFAULT_SLO: Readonly<Slo> = Object.freeze({ validationP99Ms: 2, fuseP99Ms: 5, storeAppendP99Ms: 10, errorRatePercent: 1 });

export type ConditionType = 'Ready' | 'PolicyValid' | 'RedisReady' | 'MonitoringReady' | 'Restored';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface BridgeProjectStatus {
  observedGeneration?: number;
  redisUser?: string;
  secretName?: string;
  head?: number;
  activeMounts?: number;
  /** `PVC/PATH` of the archive, once a restore succeeded; from then on spec.restoreFrom is ignored. */
  restoredFrom?: string;
  conditions?: Condition[];
}

export interface BridgeProject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: BridgeProjectSpec;
  status?: BridgeProjectStatus;
}

export function projectIdOf(bp: BridgeProject): ProjectId {
  return { namespace: bp.metadata.namespace, name: bp.metadata.name };
}

export function resourcePath(namespace?: string, name?: string): string {
  const ns = namespace ? `/namespaces/${namespace}` : '';
  return `/apis/${GROUP}/${VERSION}${ns}/${PLURAL}${name ? `/${name}` : ''}`;
}

/**
 * The Redis ACL user of a project. `.` cannot occur in a DNS label, so it separates namespace and
 * name unambiguously: with `-`, project `a-b/c` and project `a/b-c` would share one user.
 */
export function redisUserOf(project: ProjectId): string {
  return `lhb-${project.namespace}.${project.name}`;
}

/** The project whose user `user` is, by `redisUserOf`'s naming; undefined for any other user, which the operator never touches. */
export function projectOfRedisUser(user: string): ProjectId | undefined {
  // A label holds no dot, so `lhb-NS.NAME.restore` (a restore Job's user) is not a project's.
  const match = /^lhb-([^./]+)\.([^./]+)$/.exec(user);
  if (!match) return undefined;
  try {
    return parseProjectId(`${match[1]}/${match[2]}`);
  } catch {
    return undefined;
  }
}

/**
 * The short-lived user a restore Job writes with. The `.restore` suffix keeps it outside
 * `projectOfRedisUser`'s pattern, so the orphan sweep never mistakes it for a project's user.
 */
export function restoreUserOf(project: ProjectId): string {
  return `${redisUserOf(project)}.restore`;
}

/** The Secret holding that user's password, in the project's namespace. */
export function secretNameOf(project: ProjectId): string {
  return `${project.name}-bridge-redis`;
}

export function sloOf(spec: BridgeProjectSpec | undefined): Slo {
  return { ...DEFAULT_SLO, ...spec?.monitoring?.slo };
}

/**
 * The config the node plugins and speed layer read. `policy.version` is a digest of the policy so
 * decision caches keyed on it turn over exactly when the rules change, not on every spec edit.
 */
export function toProjectConfig(spec: BridgeProjectSpec | undefined, generation: number | undefined): ProjectConfig {
  const config: ProjectConfig = {};
  if (generation !== undefined) config.generation = generation;
  if (spec?.limits) config.limits = { ...spec.limits };
  if (spec?.access) config.access = { ...spec.access };
  if (spec?.storage) config.storage = { ...spec.storage };
  const policy = spec?.policy ?? {};
  config.policy = { ...policy, version: policyVersion(policy) };
  return config;
}

/** Keys sorted (the speed layer's canonical JSON), so equal policies hash equally whatever order the API returned. */
function policyVersion(policy: NonNullable<BridgeProjectSpec['policy']>): string {
  return createHash('sha256').update(canonicalJson(policy)).digest('hex').slice(0, 16);
}
