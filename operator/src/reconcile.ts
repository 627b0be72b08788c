import { randomBytes } from 'node:crypto';
import type { ProjectId } from '@lighthouse-bridge/core';
import {
  FINALIZER,
  projectIdOf,
  projectOfRedisUser,
  redisUserOf,
  resourcePath,
  restoreUserOf,
  secretNameOf,
  sloOf,
  toProjectConfig,
  type BridgeProject,
  type BridgeProjectStatus,
} from './bridgeProject.js';
import { readyOf, withTransitions, type ObservedCondition, type SubResult } from './conditions.js';
import type { EventRecorder } from './events.js';
import { KubeApiError, type KubeClient } from './kubeClient.js';
import { ownerReference, removePerProjectMonitoring, removeSloSeries, writeSloSeries } from './monitoringResources.js';
import { RedisUnavailableError, type ProjectRedis } from './projectRedis.js';
import { keptConfigNote, policyConditionOf } from './policyValid.js';
import { reconcileRestore, revokeAccess, type RestoreTarget } from './restore.js';
import type { Log } from './operator.js';
import type { Outcome } from './workQueue.js';

export interface ReconcilerDeps {
  kube: KubeClient;
  redis: ProjectRedis;
  restore: RestoreTarget;
  events: EventRecorder;
  log: Log;
}

interface SecretObject {
  metadata: { name: string; resourceVersion?: string };
  data?: Record<string, string>;
}

/**
 * Brings one BridgeProject's world in line with its spec. Level-triggered and idempotent: it reads
 * the object afresh, derives everything from it, and writes only what differs, so running it
 * twice, or after a crash half-way, converges to the same state.
 */
export async function reconcile(deps: ReconcilerDeps, key: string): Promise<Outcome> {
  const [namespace, name] = key.split('/') as [string, string];
  try {
    const bp = await deps.kube.getOptional<BridgeProject>(resourcePath(namespace, name));
    if (!bp) return await forget(deps, { namespace, name });
    if (bp.metadata.deletionTimestamp) return await finalize(deps, bp);
    return await reconcileLive(deps, bp);
  } catch (error) {
    // A 404 on our own object (finalizer patch, status write) means it went while we worked.
    if (error instanceof KubeApiError && error.status === 404 && !(await deps.kube.getOptional(resourcePath(namespace, name)))) return forget(deps, { namespace, name });
    throw error;
  }
}

/**
 * The object is gone, possibly without our finalizer having run: the API server can carry out a
 * DELETE that raced the PATCH adding the finalizer, while this reconcile goes on to create the
 * user. So a gone project's user is removed (idempotent); its data is kept as Retain does, since
 * its deletionPolicy can no longer be read.
 */
async function forget(deps: ReconcilerDeps, project: ProjectId): Promise<Outcome> {
  removeSloSeries(project);
  await deps.redis.deleteUser(redisUserOf(project));
  await deps.redis.deleteUser(restoreUserOf(project));
  return { kind: 'done' };
}

/**
 * Keys of projects that have a Redis user but are not among `present` (what a relist found), so
 * the queue revisits them and `forget` removes the user: covers projects deleted while no
 * operator ran. Only users named as `redisUserOf` names them, and in `namespace` when one is
 * watched; the reconcile reads the object afresh, so a project created since the list is safe.
 */
export async function orphanedProjectKeys(redis: ProjectRedis, present: ReadonlySet<string>, namespace: string | undefined): Promise<string[]> {
  const keys: string[] = [];
  for (const user of await redis.users()) {
    const project = projectOfRedisUser(user);
    if (!project || (namespace !== undefined && project.namespace !== namespace)) continue;
    const key = `${project.namespace}/${project.name}`;
    if (!present.has(key)) keys.push(key);
  }
  return keys;
}

/** The live object's reconcile: each sub-reconciler brings one part in line and reports its condition; Ready is derived from them. */
async function reconcileLive(deps: ReconcilerDeps, current: BridgeProject): Promise<Outcome> {
  const bp = await ensureFinalizer(deps.kube, current);
  const project = projectIdOf(bp);
  const user = redisUserOf(project);
  const secretName = secretNameOf(project);
  const password = await ensureSecret(deps.kube, bp, secretName, user);
  // A policy the nodes would refuse is never written over one they enforce.
  const compiled = policyConditionOf(bp.spec);
  const redis = await reconcileRedis(deps.redis, bp, user, password, compiled.status === 'True');
  const policy = redis.config?.kind === 'kept' ? { ...compiled, message: `${compiled.message}; ${keptConfigNote(redis.config.generation)}` } : compiled;
  if (redis.config?.kind === 'written') {
    deps.events.record(bp, { type: 'Normal', reason: 'ConfigWritten', action: 'Reconcile', note: `project config of generation ${bp.metadata.generation ?? '?'} written to Redis` });
  }
  const monitoring = await reconcileMonitoring(deps, bp);
  const restore = await reconcileRestore(deps.kube, deps.redis, deps.restore, bp, redis.stats?.head);
  // Ready waits for a restore that was asked for; projects without one have no Restored condition.
  const parts = [policy, redis.condition, monitoring.condition, ...(restore ? [restore.condition] : [])];
  recordTransitions(deps.events, bp, parts);

  try {
    await writeStatus(deps.kube, bp, {
      observedGeneration: bp.metadata.generation,
      redisUser: user,
      secretName,
      // Unread while Redis is down: keep the last figures rather than report zeros.
      head: redis.stats?.head ?? bp.status?.head,
      activeMounts: redis.stats?.activeMounts ?? bp.status?.activeMounts,
      restoredFrom: restore?.restoredFrom ?? bp.status?.restoredFrom,
      conditions: withTransitions([readyOf(parts), ...parts], bp.status?.conditions, bp.metadata.generation),
    });
  } catch (error) {
    // The API server validates the whole object on a status write, so a spec stored before the
    // CRD tightened (ADR 0064) makes every one fail; only an Event can tell the user.
    if (error instanceof KubeApiError && error.status === 422) deps.events.record(bp, { type: 'Warning', reason: 'StatusRejected', action: 'Reconcile', note: error.message });
    throw error;
  }

  // Head and mounts are refreshed by the informer's periodic relist, which revisits every project;
  // a running restore Job is looked at sooner, since its status changes are not watched.
  const retry = redis.retry ?? monitoring.retry;
  if (retry !== undefined) return { kind: 'retry', error: retry };
  return restore?.requeueAfterMs === undefined ? { kind: 'done' } : { kind: 'requeueAfter', ms: restore.requeueAfterMs };
}

/**
 * An Event for each part whose status or reason changed since the last status write: what went
 * wrong (Warning: InvalidPolicy, RedisUnavailable, ApplyFailed ...) and what was done or came
 * back (Normal: AclApplied, Restored ...). Conditions persist, so a restarted operator does not
 * repeat them.
 */
function recordTransitions(events: EventRecorder, bp: BridgeProject, parts: ObservedCondition[]): void {
  for (const c of parts) {
    const before = bp.status?.conditions?.find((p) => p.type === c.type);
    if (before?.status === c.status && before.reason === c.reason) continue;
    events.record(bp, { type: c.status === 'False' ? 'Warning' : 'Normal', reason: c.reason, action: 'Reconcile', note: `${c.type}: ${c.message}` });
  }
}

/**
 * The finalizer goes on before anything is created that it must clean up. A JSON patch guarded by
 * `test` on resourceVersion: lost races are retried, never clobber.
 */
async function ensureFinalizer(kube: KubeClient, bp: BridgeProject): Promise<BridgeProject> {
  if (bp.metadata.finalizers?.includes(FINALIZER)) return bp;
  return kube.patch<BridgeProject>(resourcePath(bp.metadata.namespace, bp.metadata.name), 'json', [
    { op: 'test', path: '/metadata/resourceVersion', value: bp.metadata.resourceVersion },
    bp.metadata.finalizers ? { op: 'add', path: '/metadata/finalizers/-', value: FINALIZER } : { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] },
  ]);
}

/** What became of the project config: written (changed), unchanged, or kept as it was because the spec's policy is invalid. */
type ConfigOutcome = { kind: 'written' | 'unchanged' } | { kind: 'kept'; generation: number | undefined };

/** The ACL user and project config in Redis, and the figures read back from it. */
async function reconcileRedis(
  redis: ProjectRedis,
  bp: BridgeProject,
  user: string,
  password: string,
  policyValid: boolean,
): Promise<SubResult & { stats?: { head: number; activeMounts: number }; config?: ConfigOutcome }> {
  const project = projectIdOf(bp);
  try {
    await redis.ensureUser(project, user, password);
    const config: ConfigOutcome = policyValid
      ? { kind: (await redis.writeConfig(project, toProjectConfig(bp.spec, bp.metadata.generation))) ? 'written' : 'unchanged' }
      : { kind: 'kept', generation: await redis.configGeneration(project) };
    const stats = await redis.stats(project);
    const message = policyValid ? `ACL user ${user} and project config applied` : `ACL user ${user} applied; project config not replaced (see PolicyValid)`;
    return { condition: { type: 'RedisReady', status: 'True', reason: 'AclApplied', message }, stats, config };
  } catch (error) {
    if (!(error instanceof RedisUnavailableError)) throw error;
    return { condition: { type: 'RedisReady', status: 'False', reason: 'RedisUnavailable', message: error.message }, retry: error };
  }
}

/**
 * The project's SLO series, which the chart's fleet rules join on (none when monitoring is
 * disabled), and the removal of the per-project monitoring objects older operators created.
 */
async function reconcileMonitoring(deps: ReconcilerDeps, bp: BridgeProject): Promise<SubResult> {
  const project = projectIdOf(bp);
  const condition: ObservedCondition =
    bp.spec?.monitoring?.enabled === false
      ? { type: 'MonitoringReady', status: 'True', reason: 'Disabled', message: 'spec.monitoring.enabled is false; no SLO series, so no alerts for this project' }
      : { type: 'MonitoringReady', status: 'True', reason: 'SloSeriesWritten', message: "SLO series written for the chart's fleet alert rules" };
  if (condition.reason === 'Disabled') removeSloSeries(project);
  else writeSloSeries(project, sloOf(bp.spec));
  const previous = bp.status?.conditions?.find((c) => c.type === 'MonitoringReady')?.reason;
  if (previous === 'Disabled' || previous === 'SloSeriesWritten') return { condition };
  try {
    await removePerProjectMonitoring(deps.kube, bp);
    return { condition };
  } catch (error) {
    if (!(error instanceof KubeApiError)) throw error;
    return { condition: { type: 'MonitoringReady', status: 'False', reason: 'CleanupFailed', message: `removing the per-project monitoring objects of an older operator: ${error.message}` }, retry: error };
  }
}

async function finalize(deps: ReconcilerDeps, bp: BridgeProject): Promise<Outcome> {
  if (!bp.metadata.finalizers?.includes(FINALIZER)) return { kind: 'done' };
  const project = projectIdOf(bp);
  removeSloSeries(project);
  // Redis first: if it is down the finalizer stays, and the object waits until cleanup can happen.
  await deps.redis.deleteUser(redisUserOf(project));
  // A restore cut short by the deletion: its Job and Secret go with the owner, its user goes here.
  await revokeAccess(deps.kube, deps.redis, bp);
  let note = `ACL user ${redisUserOf(project)} deleted; data kept (deletionPolicy Retain)`;
  if (bp.spec?.storage?.deletionPolicy === 'Delete') {
    const removed = await deps.redis.purge(project);
    deps.log('info', 'project data deleted', { project: `${project.namespace}/${project.name}`, keys: removed });
    note = `ACL user ${redisUserOf(project)} and ${removed} keys deleted (deletionPolicy Delete)`;
  }
  deps.events.record(bp, { type: 'Normal', reason: 'CleanedUp', action: 'Cleanup', note });
  const index = bp.metadata.finalizers.indexOf(FINALIZER);
  await deps.kube.patch(resourcePath(bp.metadata.namespace, bp.metadata.name), 'json', [
    { op: 'test', path: '/metadata/resourceVersion', value: bp.metadata.resourceVersion },
    { op: 'remove', path: `/metadata/finalizers/${index}` },
  ]);
  return { kind: 'done' };
}

/** The Secret is the source of the password: created once, then only read, so clients keep working across reconciles. */
async function ensureSecret(kube: KubeClient, bp: BridgeProject, name: string, user: string): Promise<string> {
  const path = `/api/v1/namespaces/${bp.metadata.namespace}/secrets`;
  const existing = await kube.getOptional<SecretObject>(`${path}/${name}`);
  const stored = existing?.data?.password;
  if (stored) return Buffer.from(stored, 'base64').toString('utf8');
  const password = randomBytes(24).toString('hex');
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      namespace: bp.metadata.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'lighthouse-bridge-operator', 'bridge.lighthouse.dev/project': bp.metadata.name },
      ownerReferences: [ownerReference(bp)],
      ...(existing?.metadata.resourceVersion ? { resourceVersion: existing.metadata.resourceVersion } : {}),
    },
    stringData: { username: user, password, project: `${bp.metadata.namespace}/${bp.metadata.name}` },
  };
  try {
    if (existing) await kube.replace(`${path}/${name}`, body);
    else await kube.create(path, body);
    return password;
  } catch (error) {
    // Another writer got there first (an earlier run of ours that crashed after creating it): use theirs.
    if (error instanceof KubeApiError && error.status === 409) return ensureSecret(kube, bp, name, user);
    throw error;
  }
}

/** Writes status only when it changed, so the watch event of our own write ends the loop. */
async function writeStatus(kube: KubeClient, bp: BridgeProject, status: BridgeProjectStatus): Promise<void> {
  if (JSON.stringify(normalize(bp.status)) === JSON.stringify(normalize(status))) return;
  await kube.patch(`${resourcePath(bp.metadata.namespace, bp.metadata.name)}/status`, 'merge', { status });
}

function normalize(status: BridgeProjectStatus | undefined): unknown {
  if (!status) return undefined;
  const order: Array<keyof BridgeProjectStatus> = ['observedGeneration', 'redisUser', 'secretName', 'head', 'activeMounts', 'restoredFrom'];
  const conditions = (status.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration ?? null, c.lastTransitionTime]);
  return [...order.map((k) => status[k] ?? null), conditions];
}
