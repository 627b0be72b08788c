import { createHash, randomBytes } from 'node:crypto';
import { projectIdOf, restoreUserOf, type BridgeProject, type RestoreSource } from './bridgeProject.js';
import type { ObservedCondition, SubResult } from './conditions.js';
import { KubeApiError, type KubeClient } from './kubeClient.js';
import { ownerReference } from './monitoringResources.js';
import type { ProjectRedis } from './projectRedis.js';

/**
 * `spec.restoreFrom`: a Job that runs `lighthouse-bridge import` once into the project's empty log,
 * with a Redis user that may write this project's keys only and exists while the Job runs
 * (ADR 0065). The Job, not this process, does the import, so a restore of any size survives
 * operator restarts and leader changes; the condition is read back from the Job's status.
 */
export interface RestoreTarget {
  /** The image Jobs run (the operator's own); without it a restore cannot start. */
  image?: string;
  /** The operator's Redis URL: its hosts, with the restore user's credentials instead of its own. */
  redisUrl: string;
}

export interface RestoreResult extends SubResult {
  /** Set when this reconcile saw the Job succeed: goes to status.restoredFrom. */
  restoredFrom?: string;
  requeueAfterMs?: number;
}

/** Where the claim is mounted in the Job's pod. */
export const ARCHIVE_MOUNT = '/archive';
export const SOURCE_ANNOTATION = 'bridge.lighthouse.dev/restore-from';
/** A Job's status is not watched; a running restore is looked at again this often. */
const RUNNING_RECHECK_MS = 5_000;

interface JobObject {
  metadata: { name: string; annotations?: Record<string, string> };
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> };
}

type JobState = { kind: 'running' } | { kind: 'succeeded' } | { kind: 'failed'; reason: string; message: string };

export function sourceOf(source: RestoreSource): string {
  return `${source.pvc}/${source.path}`;
}

/**
 * The Job's (and its Secret's) name: a Job's name goes into its pods' `job-name` label, at most
 * 63 characters, so long project names are cut and made unique again with a digest.
 */
export function restoreJobName(bp: BridgeProject): string {
  const name = `${bp.metadata.name}-bridge-restore`;
  if (name.length <= 63) return name;
  const digest = createHash('sha256').update(bp.metadata.name).digest('hex').slice(0, 8);
  return `${bp.metadata.name.slice(0, 38)}-${digest}-bridge-restore`;
}

/** `url` with its user and password replaced; the parser (core's parseStoreUrl) splits at the last `@`. */
export function withCredentials(url: string, user: string, password: string): string {
  const scheme = url.indexOf('://') + 3;
  const rest = url.slice(scheme);
  const hosts = rest.slice(rest.lastIndexOf('@') + 1);
  return `${url.slice(0, scheme)}${encodeURIComponent(user)}:${encodeURIComponent(password)}@${hosts}`;
}

const condition = (status: ObservedCondition['status'], reason: string, message: string): ObservedCondition => ({ type: 'Restored', status, reason, message });

/**
 * The Restored condition, or undefined when the project has no spec.restoreFrom. `head` is the
 * log's length as just read from Redis, undefined when Redis could not be read.
 */
export async function reconcileRestore(kube: KubeClient, redis: ProjectRedis, target: RestoreTarget, bp: BridgeProject, head: number | undefined): Promise<RestoreResult | undefined> {
  const wanted = bp.spec?.restoreFrom;
  if (!wanted) return undefined;
  const source = sourceOf(wanted);
  const done = bp.status?.restoredFrom;
  if (done !== undefined) {
    const ignored = done === source ? '' : `; spec.restoreFrom is now ${source}, which has no effect after a successful restore`;
    return { condition: condition('True', 'Restored', `restored from ${done}${ignored}`) };
  }

  const ns = bp.metadata.namespace;
  const name = restoreJobName(bp);
  const jobPath = `/apis/batch/v1/namespaces/${ns}/jobs/${name}`;
  const job = await kube.getOptional<JobObject>(jobPath);
  if (job) {
    const state = jobState(job);
    if (state.kind === 'running') return { condition: condition('Unknown', 'Progressing', `Job ${name} is importing ${jobSource(job)}`), requeueAfterMs: RUNNING_RECHECK_MS };
    // Finished either way: the write access goes now, not when the project does — once: a failure
    // already in status was revoked before that status was written, so relists need not repeat it.
    const shown = bp.status?.conditions?.find((c) => c.type === 'Restored');
    const alreadyRevoked = state.kind === 'failed' && shown?.status === 'False' && shown.reason === state.reason;
    if (!alreadyRevoked) await revokeAccess(kube, redis, bp, name);
    if (state.kind === 'succeeded') return { condition: condition('True', 'Restored', `restored from ${jobSource(job)}`), restoredFrom: jobSource(job) };
    if (jobSource(job) !== source) {
      // A new archive named after a failure: the old Job goes, and the next reconcile starts afresh.
      await kube.delete(`${jobPath}?propagationPolicy=Background`);
      return { condition: condition('Unknown', 'Progressing', `spec.restoreFrom changed to ${source}; replacing failed Job ${name}`), requeueAfterMs: 0 };
    }
    return { condition: condition('False', state.reason, `Job ${name} failed: ${state.message}; delete the Job or change spec.restoreFrom to try again`) };
  }

  if (head === undefined) return { condition: condition('Unknown', 'RedisUnavailable', 'waiting for Redis to tell whether the project log is empty') };
  if (head > 0) return { condition: condition('False', 'TargetNotEmpty', `the project log holds ${head} events; a restore only imports into an empty project`) };
  if (!target.image) return { condition: condition('False', 'NoImage', 'the operator was started without --image, so it cannot run a restore Job') };

  await grantAccess(kube, redis, target, bp, name);
  try {
    await kube.create(`/apis/batch/v1/namespaces/${ns}/jobs`, restoreJob(bp, wanted, name, target.image));
  } catch (error) {
    // An earlier run of ours created it and crashed before writing status: follow that one.
    if (!(error instanceof KubeApiError && error.status === 409)) throw error;
  }
  return { condition: condition('Unknown', 'Progressing', `Job ${name} created to import ${source}`), requeueAfterMs: RUNNING_RECHECK_MS };
}

/** Removes a restore's user and Secret, e.g. when its project is deleted mid-restore. Idempotent. */
export async function revokeAccess(kube: KubeClient, redis: ProjectRedis, bp: BridgeProject, secretName = restoreJobName(bp)): Promise<void> {
  await redis.deleteUser(restoreUserOf(projectIdOf(bp)));
  await kube.delete(`/api/v1/namespaces/${bp.metadata.namespace}/secrets/${secretName}`);
}

/** A fresh password each time: the Secret of a finished restore has been deleted, and nothing else holds it. */
async function grantAccess(kube: KubeClient, redis: ProjectRedis, target: RestoreTarget, bp: BridgeProject, secretName: string): Promise<void> {
  const project = projectIdOf(bp);
  const user = restoreUserOf(project);
  const password = randomBytes(24).toString('hex');
  await redis.ensureUser(project, user, password, 'restorer');
  await kube.apply(`/api/v1/namespaces/${bp.metadata.namespace}/secrets/${secretName}`, {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: secretName, namespace: bp.metadata.namespace, labels: labelsOf(bp), ownerReferences: [ownerReference(bp)] },
    stringData: { url: withCredentials(target.redisUrl, user, password) },
  });
}

function labelsOf(bp: BridgeProject): Record<string, string> {
  return { 'app.kubernetes.io/managed-by': 'lighthouse-bridge-operator', 'app.kubernetes.io/component': 'restore', 'bridge.lighthouse.dev/project': bp.metadata.name };
}

export function restoreJob(bp: BridgeProject, source: RestoreSource, name: string, image: string): Record<string, unknown> {
  const labels = labelsOf(bp);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: bp.metadata.namespace, labels, annotations: { [SOURCE_ANNOTATION]: sourceOf(source) }, ownerReferences: [ownerReference(bp)] },
    spec: {
      // An import refuses a bad archive the same way every time; retries are for a node or Redis lost mid-way.
      backoffLimit: 2,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'import',
              image,
              // The store comes from LHB_STORE, so the password never shows in the pod's arguments.
              args: ['import', `${bp.metadata.namespace}/${bp.metadata.name}`, '--from', `${ARCHIVE_MOUNT}/${source.path}`],
              env: [{ name: 'LHB_STORE', valueFrom: { secretKeyRef: { name, key: 'url' } } }],
              volumeMounts: [{ name: 'archive', mountPath: ARCHIVE_MOUNT, readOnly: true }],
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            },
          ],
          volumes: [{ name: 'archive', persistentVolumeClaim: { claimName: source.pvc, readOnly: true } }],
        },
      },
    },
  };
}

function jobSource(job: JobObject): string {
  return job.metadata.annotations?.[SOURCE_ANNOTATION] ?? '(unknown archive)';
}

/** Complete and Failed are the Job controller's terminal conditions. */
function jobState(job: JobObject): JobState {
  const conditions = job.status?.conditions ?? [];
  if (conditions.some((c) => c.type === 'Complete' && c.status === 'True')) return { kind: 'succeeded' };
  const failed = conditions.find((c) => c.type === 'Failed' && c.status === 'True');
  if (failed) return { kind: 'failed', reason: failed.reason || 'JobFailed', message: failed.message || 'the import exited non-zero' };
  return { kind: 'running' };
}
