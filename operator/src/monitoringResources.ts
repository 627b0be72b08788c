import type { ProjectId } from '@lighthouse-bridge/core';
import { projectLabels } from '@lighthouse-bridge/core/observability';
import type { BridgeProject, Slo } from './bridgeProject.js';
import { GROUP, KIND, VERSION } from './bridgeProject.js';
import type { KubeClient } from './kubeClient.js';
import { projectSlo } from './metrics.js';

/**
 * A project's part in the fleet monitoring the chart ships: its SLO thresholds as series on the
 * operator's /metrics, which the chart's rules join on. No objects per project.
 */
export function writeSloSeries(project: ProjectId, slo: Slo): void {
  const labels = projectLabels(project);
  projectSlo.validationP99.set(labels, slo.validationP99Ms / 1000);
  projectSlo.fuseP99.set(labels, slo.fuseP99Ms / 1000);
  projectSlo.storeAppendP99.set(labels, slo.storeAppendP99Ms / 1000);
  projectSlo.errorRatio.set(labels, slo.errorRatePercent / 100);
}

/** The project is gone or opted out: its alerts stop with its series. */
export function removeSloSeries(project: ProjectId): void {
  const labels = projectLabels(project);
  for (const gauge of Object.values(projectSlo)) gauge.remove(labels);
}

/**
 * Before the chart shipped fleet monitoring, each project had a PrometheusRule and ServiceMonitor,
 * or two ConfigMaps (ADR 0063). An upgraded operator deletes them once; a 404 (never created, or
 * the Prometheus Operator CRDs absent) is what `delete` already treats as done.
 */
export async function removePerProjectMonitoring(kube: KubeClient, bp: BridgeProject): Promise<void> {
  const ns = bp.metadata.namespace;
  const base = `${bp.metadata.name}-bridge`;
  await kube.delete(`/apis/monitoring.coreos.com/v1/namespaces/${ns}/prometheusrules/${base}-alerts`);
  await kube.delete(`/apis/monitoring.coreos.com/v1/namespaces/${ns}/servicemonitors/${base}-metrics`);
  await kube.delete(`/api/v1/namespaces/${ns}/configmaps/${base}-alerts`);
  await kube.delete(`/api/v1/namespaces/${ns}/configmaps/${base}-dashboard`);
}

export function ownerReference(bp: BridgeProject) {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, name: bp.metadata.name, uid: bp.metadata.uid, controller: true, blockOwnerDeletion: true };
}
