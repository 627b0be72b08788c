import type { BridgeProject } from './bridgeProject.js';
import { GROUP, KIND, VERSION, projectIdOf, sloOf } from './bridgeProject.js';
import type { KubeClient } from './kubeClient.js';
import { dashboard, ruleGroups } from './monitoring.js';

/**
 * The monitoring objects of a project: PrometheusRule + ServiceMonitor where the Prometheus
 * Operator's CRDs are installed, else ConfigMaps holding the same rules and a Grafana dashboard
 * (picked up by Grafana's sidecar through the `grafana_dashboard` label).
 */
export type MonitoringMode = 'prometheus-operator' | 'configmaps';

export interface MonitoringTarget {
  /** Namespace of the node plugin's metrics Service that the ServiceMonitor selects. */
  metricsNamespace: string;
}

const MONITORING_API = '/apis/monitoring.coreos.com/v1';

/** Caches whether the Prometheus Operator CRDs exist, so a relist of many projects asks once. */
export class MonitoringDiscovery {
  private cached: { mode: MonitoringMode; at: number } | undefined;
  constructor(
    private readonly kube: KubeClient,
    private readonly ttlMs = 30_000,
  ) {}

  async mode(): Promise<MonitoringMode> {
    if (this.cached && performance.now() - this.cached.at < this.ttlMs) return this.cached.mode;
    const list = await this.kube.getOptional<{ resources?: Array<{ name: string }> }>(MONITORING_API);
    const names = new Set((list?.resources ?? []).map((r) => r.name));
    const mode: MonitoringMode = names.has('prometheusrules') && names.has('servicemonitors') ? 'prometheus-operator' : 'configmaps';
    this.cached = { mode, at: performance.now() };
    return mode;
  }

  forget(): void {
    this.cached = undefined;
  }
}

function names(bp: BridgeProject) {
  const base = `${bp.metadata.name}-bridge`;
  return { rule: `${base}-alerts`, monitor: `${base}-metrics`, rulesConfigMap: `${base}-alerts`, dashboardConfigMap: `${base}-dashboard` };
}

function meta(bp: BridgeProject, name: string, labels: Record<string, string> = {}) {
  return {
    name,
    namespace: bp.metadata.namespace,
    labels: { 'app.kubernetes.io/managed-by': 'lighthouse-bridge-operator', 'bridge.lighthouse.dev/project': bp.metadata.name, ...labels },
    ownerReferences: [ownerReference(bp)],
  };
}

export function ownerReference(bp: BridgeProject) {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, name: bp.metadata.name, uid: bp.metadata.uid, controller: true, blockOwnerDeletion: true };
}

const paths = (ns: string) => ({
  rule: `${MONITORING_API}/namespaces/${ns}/prometheusrules`,
  monitor: `${MONITORING_API}/namespaces/${ns}/servicemonitors`,
  configMap: `/api/v1/namespaces/${ns}/configmaps`,
});

/**
 * Applies the objects of `mode`; with `cleanup`, also deletes those of the other mode (after a
 * switch, or when monitoring was disabled).
 */
export async function applyMonitoring(kube: KubeClient, bp: BridgeProject, mode: MonitoringMode | 'disabled', target: MonitoringTarget, cleanup: boolean): Promise<void> {
  const project = projectIdOf(bp);
  const slo = sloOf(bp.spec);
  const n = names(bp);
  const p = paths(bp.metadata.namespace);
  const groups = ruleGroups(project, slo);

  if (mode === 'prometheus-operator') {
    await kube.apply(`${p.rule}/${n.rule}`, {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: meta(bp, n.rule),
      spec: { groups },
    });
    await kube.apply(`${p.monitor}/${n.monitor}`, {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: meta(bp, n.monitor),
      spec: {
        namespaceSelector: { matchNames: [target.metricsNamespace] },
        selector: { matchLabels: { 'app.kubernetes.io/name': 'lighthouse-bridge', 'app.kubernetes.io/component': 'csi-node' } },
        endpoints: [{ port: 'metrics', path: '/metrics', interval: '30s' }],
      },
    });
  } else if (cleanup) {
    await kube.delete(`${p.rule}/${n.rule}`);
    await kube.delete(`${p.monitor}/${n.monitor}`);
  }

  if (mode === 'configmaps') {
    await kube.apply(`${p.configMap}/${n.rulesConfigMap}`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(bp, n.rulesConfigMap, { 'bridge.lighthouse.dev/kind': 'prometheus-rules' }),
      // JSON is YAML, so Prometheus loads this file as a rules file unchanged.
      data: { 'lighthouse-bridge.rules.yaml': JSON.stringify({ groups }, null, 2) },
    });
    await kube.apply(`${p.configMap}/${n.dashboardConfigMap}`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(bp, n.dashboardConfigMap, { grafana_dashboard: '1' }),
      data: { [`lighthouse-bridge-${bp.metadata.namespace}-${bp.metadata.name}.json`]: JSON.stringify(dashboard(project, slo), null, 2) },
    });
  } else if (cleanup) {
    await kube.delete(`${p.configMap}/${n.rulesConfigMap}`);
    await kube.delete(`${p.configMap}/${n.dashboardConfigMap}`);
  }
}
