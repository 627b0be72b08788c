import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { kubeToolsAvailable, startKube, type KubeEnv } from '@lighthouse-bridge/test/kube';
import type { KubeClient } from './kubeClient.js';
import { fileURLToPath } from 'node:url';
import { crdReference } from './crdReference.js';
import { fleetRuleGroups } from './monitoring.js';
import { MONITORING_FILES, monitoringFiles } from './monitoringFiles.js';
import { CHART, helmAvailable, RELEASE_NAMESPACE, render, renderAs, type Manifest } from './testing/helm.js';
import { CRD_FILE, ensureNamespace, kubeFor, waitForCrd } from './testing/testEnv.js';

const skip = !helmAvailable ? 'helm not extracted: run bash test/setup/tools/helm.sh' : !kubeToolsAvailable() ? 'kube-apiserver not built: run bash test/setup/tools/kube.sh' : false;

/** REST collection of each kind the chart renders. */
const COLLECTIONS: Record<string, { group: string; plural: string; namespaced: boolean }> = {
  CustomResourceDefinition: { group: 'apis/apiextensions.k8s.io/v1', plural: 'customresourcedefinitions', namespaced: false },
  ServiceAccount: { group: 'api/v1', plural: 'serviceaccounts', namespaced: true },
  Secret: { group: 'api/v1', plural: 'secrets', namespaced: true },
  ConfigMap: { group: 'api/v1', plural: 'configmaps', namespaced: true },
  Service: { group: 'api/v1', plural: 'services', namespaced: true },
  ClusterRole: { group: 'apis/rbac.authorization.k8s.io/v1', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { group: 'apis/rbac.authorization.k8s.io/v1', plural: 'clusterrolebindings', namespaced: false },
  Role: { group: 'apis/rbac.authorization.k8s.io/v1', plural: 'roles', namespaced: true },
  RoleBinding: { group: 'apis/rbac.authorization.k8s.io/v1', plural: 'rolebindings', namespaced: true },
  Deployment: { group: 'apis/apps/v1', plural: 'deployments', namespaced: true },
  DaemonSet: { group: 'apis/apps/v1', plural: 'daemonsets', namespaced: true },
  CSIDriver: { group: 'apis/storage.k8s.io/v1', plural: 'csidrivers', namespaced: false },
  CronJob: { group: 'apis/batch/v1', plural: 'cronjobs', namespaced: true },
  PersistentVolumeClaim: { group: 'api/v1', plural: 'persistentvolumeclaims', namespaced: true },
  StatefulSet: { group: 'apis/apps/v1', plural: 'statefulsets', namespaced: true },
  PodDisruptionBudget: { group: 'apis/policy/v1', plural: 'poddisruptionbudgets', namespaced: true },
};

function pathOf(m: Manifest, namespace: string): string {
  const c = COLLECTIONS[m.kind];
  if (!c) throw new Error(`the chart renders a ${m.kind}, which this test does not know how to apply`);
  return `/${c.group}${c.namespaced ? `/namespaces/${m.metadata.namespace ?? namespace}` : ''}/${c.plural}/${m.metadata.name}`;
}

// Needs neither helm nor an API server, so it runs everywhere.
describe("the chart's CRDs", () => {
  it('are copies of crds/, the source (`make chart` copies them)', async () => {
    const source = dirname(CRD_FILE);
    const inChart = join(CHART, 'crds');
    const [names, chartNames] = await Promise.all([readdir(source), readdir(inChart)]);
    assert.deepEqual(chartNames.sort(), names.sort(), 'the same files');
    for (const name of names) {
      assert.equal(await readFile(join(inChart, name), 'utf8'), await readFile(join(source, name), 'utf8'), `charts/lighthouse-bridge/crds/${name} differs from crds/${name}: edit crds/ and run make chart`);
    }
  });
});

describe("the chart's monitoring files", () => {
  it('are what operator/src/monitoring.ts renders (`make chart` writes them)', async () => {
    for (const [name, text] of Object.entries(monitoringFiles())) {
      assert.equal(await readFile(join(CHART, 'files', name), 'utf8'), text, `charts/lighthouse-bridge/files/${name} differs from operator/src/monitoring.ts: run make chart`);
    }
  });
});

describe('docs/reference/bridgeproject.md', () => {
  it('is what operator/src/crdReference.ts renders from the CRD (`make chart` writes it)', async () => {
    const reference = fileURLToPath(new URL('../../docs/reference/bridgeproject.md', import.meta.url));
    assert.equal(await readFile(reference, 'utf8'), crdReference(await readFile(CRD_FILE, 'utf8')), 'docs/reference/bridgeproject.md differs from crds/: run make chart');
  });
});

describe('Helm chart', { skip }, () => {
  const ns = RELEASE_NAMESPACE;
  let env: KubeEnv;
  let kube: KubeClient;
  let manifests: Manifest[];

  before(async () => {
    manifests = await render();
    env = await startKube();
    kube = await kubeFor(env.kubeconfig);
    await ensureNamespace(kube, ns);
  });
  after(async () => {
    await env?.stop();
  });

  it('renders the operator, the node plugin and the CSIDriver as specified', () => {
    const find = (kind: string, suffix = '') => manifests.find((m) => m.kind === kind && m.metadata.name.endsWith(suffix));
    const driver = find('CSIDriver') as Manifest;
    assert.equal(driver.metadata.name, 'bridge.lighthouse.dev');
    assert.deepEqual(driver.spec, { attachRequired: false, podInfoOnMount: true, volumeLifecycleModes: ['Persistent', 'Ephemeral'], fsGroupPolicy: 'None' });

    type Pod = { containers: Array<{ name: string; command?: string[]; args: string[]; securityContext?: { privileged?: boolean; runAsUser?: number }; volumeMounts: Array<{ name: string; mountPath: string; mountPropagation?: string }> }> };
    const ds = find('DaemonSet', 'csi-node') as Manifest & { spec: { updateStrategy: unknown; template: { spec: Pod } } };
    const plugin = ds.spec.template.spec.containers.find((c) => c.name === 'plugin');
    assert.ok(plugin);
    // The keeper supervises the plugin and holds its mounts' connections, on the state dir's hostPath.
    assert.deepEqual(plugin.command, ['/app/csi-driver/native/build/lighthouse-bridge-keeper', '--socket', '/var/lib/lighthouse-bridge/csi/keeper.sock', '--', 'node', '/app/cli/dist/main.js']);
    assert.ok(plugin.volumeMounts.some((v) => v.name === 'state-dir' && v.mountPath === '/var/lib/lighthouse-bridge'));
    assert.deepEqual(plugin.args.slice(0, 7), ['csi', '--mode', 'node', '--endpoint', 'unix:///csi/csi.sock', '--node-id', '$(NODE_NAME)']);
    assert.ok(!plugin.args.includes('--no-custody'));
    assert.equal(plugin.securityContext?.privileged, true);
    assert.equal(plugin.securityContext?.runAsUser, 0, 'the image defaults to uid 65532; the node plugin must override it');
    assert.ok(plugin.volumeMounts.some((v) => v.mountPath === '/dev/fuse'));
    assert.equal(plugin.volumeMounts.find((v) => v.mountPath === '/var/lib/kubelet/pods')?.mountPropagation, 'Bidirectional');
    assert.deepEqual(ds.spec.template.spec.containers.map((c) => c.name), ['plugin'], 'the plugin registers itself: no sidecar');
    // The new plugin pod starts beside the old one and takes its live mounts over (ADR 0083).
    assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });

    const operator = find('Deployment', 'operator') as Manifest & { spec: { replicas: number; template: { spec: Pod } } };
    assert.equal(operator.spec.replicas, 2);
    assert.ok(operator.spec.template.spec.containers[0]?.args.includes('--leader-elect'));
  });

  const applyAll = async (all: Manifest[]) => {
    for (const m of all) {
      await kube.apply(pathOf(m, ns), { ...m, metadata: { ...m.metadata, namespace: COLLECTIONS[m.kind]?.namespaced ? ns : undefined } });
    }
  };
  /** Asks the API server whether the chart's ServiceAccount `account` may do this. */
  const allowed = async (account: string, verb: string, group: string, resource: string, namespace?: string, subresource?: string, release = 'lhb') => {
    const review = await kube.create<{ status: { allowed: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: `system:serviceaccount:${ns}:${release}-lighthouse-bridge-${account}`,
        groups: ['system:serviceaccounts'],
        resourceAttributes: { verb, group, resource, ...(namespace ? { namespace } : {}), ...(subresource ? { subresource } : {}) },
      },
    });
    return review.status.allowed;
  };

  it('applies cleanly to a real API server (schemas, RBAC, CRD established)', async () => {
    await applyAll(manifests);
    await waitForCrd(kube, 'bridgeprojects.bridge.lighthouse.dev');
    // The operator's ServiceAccount may do what the operator does, and no more than that.
    const can = (verb: string, group: string, resource: string, namespace?: string, subresource?: string) => allowed('operator', verb, group, resource, namespace, subresource);
    assert.equal(await can('watch', 'bridge.lighthouse.dev', 'bridgeprojects'), true);
    assert.equal(await can('patch', 'bridge.lighthouse.dev', 'bridgeprojects', 'team', 'status'), true);
    assert.equal(await can('create', '', 'secrets', 'team'), true);
    assert.equal(await can('create', 'batch', 'jobs', 'team'), true);
    assert.equal(await can('create', 'events.k8s.io', 'events', 'team'), true);
    assert.equal(await can('patch', 'events.k8s.io', 'events', 'team'), false);
    assert.equal(await can('update', 'batch', 'jobs', 'team'), false);
    assert.equal(await can('update', 'coordination.k8s.io', 'leases', ns), true);
    assert.equal(await can('update', 'coordination.k8s.io', 'leases', 'other'), false);
    assert.equal(await can('delete', '', 'pods', 'team'), false);
    // Monitoring is the chart's: the operator only deletes what older operators made per project.
    assert.equal(await can('create', 'monitoring.coreos.com', 'prometheusrules', 'team'), false);
    assert.equal(await can('create', 'monitoring.coreos.com', 'servicemonitors', 'team'), false);
    assert.equal(await can('list', 'monitoring.coreos.com', 'podmonitors', 'team'), false);
    assert.equal(await can('delete', 'monitoring.coreos.com', 'prometheusrules', 'team'), true);
    assert.equal(await can('create', '', 'configmaps', 'team'), false);
    assert.equal(await can('delete', '', 'configmaps', 'team'), true);
  });

  it('applies the bundled Redis (StatefulSet, Service, Secret) and the operator PodDisruptionBudget to a real API server', async () => {
    const rendered = await renderAs('bundled', [], ['redis.bundled.enabled=true'], { redis: false });
    await applyAll(rendered.filter((m) => m.kind !== 'CustomResourceDefinition'));
    const set = await kube.get<{ spec: { serviceName: string; volumeClaimTemplates: unknown[] } }>(`/apis/apps/v1/namespaces/${ns}/statefulsets/bundled-lighthouse-bridge-redis`);
    assert.equal(set.spec.serviceName, 'bundled-lighthouse-bridge-redis');
    assert.equal(set.spec.volumeClaimTemplates.length, 1);
    await kube.get(`/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets/bundled-lighthouse-bridge-operator`);
  });

  it('with operator.watchNamespace, grants the operator a Role in that namespace only', async () => {
    const release = 'scoped';
    const rendered = await renderAs(release, [], ['operator.watchNamespace=team']);
    const operatorRbac = rendered.filter((m) => m.metadata.name === `${release}-lighthouse-bridge-operator` && ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'].includes(m.kind));
    assert.deepEqual(operatorRbac.map((m) => [m.kind, m.metadata.namespace]), [['Role', 'team'], ['RoleBinding', 'team']]);
    await ensureNamespace(kube, 'team');
    for (const m of rendered.filter((x) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(x.kind))) {
      await kube.apply(pathOf(m, ns), { ...m, metadata: { ...m.metadata, namespace: m.metadata.namespace ?? ns } });
    }
    const can = (verb: string, group: string, resource: string, namespace?: string) => allowed('operator', verb, group, resource, namespace, undefined, release);
    assert.equal(await can('watch', 'bridge.lighthouse.dev', 'bridgeprojects', 'team'), true);
    assert.equal(await can('create', '', 'secrets', 'team'), true);
    assert.equal(await can('watch', 'bridge.lighthouse.dev', 'bridgeprojects'), false);
    assert.equal(await can('create', '', 'secrets', 'other'), false);
  });

  type Monitor = Manifest & { spec: { selector: { matchLabels: Record<string, string> }; namespaceSelector: { matchNames: string[] }; endpoints: Array<{ port: string; honorLabels: boolean }> } };

  it('with the Prometheus Operator API: a ServiceMonitor each for the node plugins and the operator, one PrometheusRule, the dashboard, additionalLabels on all', async () => {
    const rendered = await renderAs('lhb', ['--api-versions', 'monitoring.coreos.com/v1'], ['monitoring.additionalLabels.release=kps']);
    const monitors = rendered.filter((m): m is Monitor => m.kind === 'ServiceMonitor');
    assert.deepEqual(monitors.map((m) => m.spec.selector.matchLabels['app.kubernetes.io/component']), ['csi-node', 'operator']);
    const services = rendered.filter((m) => m.kind === 'Service');
    for (const monitor of monitors) {
      assert.equal(monitor.metadata.labels?.release, 'kps');
      assert.deepEqual(monitor.spec.namespaceSelector.matchNames, [ns]);
      assert.deepEqual(monitor.spec.endpoints.map((e) => [e.port, e.honorLabels]), [['metrics', true]]);
      const component = monitor.spec.selector.matchLabels['app.kubernetes.io/component'];
      assert.ok(services.some((svc) => svc.metadata.labels?.['app.kubernetes.io/component'] === component), `a metrics Service for ${component}`);
    }
    const rules = rendered.filter((m) => m.kind === 'PrometheusRule');
    assert.equal(rules.length, 1);
    assert.equal(rules[0]?.metadata.labels?.release, 'kps');
    assert.deepEqual(rules[0]?.spec, { groups: fleetRuleGroups() });
    const dashboards = rendered.filter((m) => m.metadata.labels?.grafana_dashboard === '1');
    assert.deepEqual(dashboards.map((m) => m.metadata.labels?.release), ['kps']);
    assert.equal(rendered.filter((m) => m.kind === 'ConfigMap').length, 1, 'no rules ConfigMap');
    assert.deepEqual(await renderAs('lhb', [], ['monitoring.mode=prometheus-operator']).then((r) => r.filter((m) => m.kind === 'PrometheusRule').length), 1, 'forced without the API');
  });

  it('without the Prometheus Operator API: the rules as a Prometheus rule file in a ConfigMap, and the dashboard', () => {
    type ConfigMap = Manifest & { data: Record<string, string> };
    assert.deepEqual(manifests.filter((m) => m.kind === 'ServiceMonitor' || m.kind === 'PrometheusRule'), []);
    const rules = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name.endsWith('-rules')) as ConfigMap;
    assert.equal(rules.data[MONITORING_FILES.rules], monitoringFiles()[MONITORING_FILES.rules]);
    const dashboard = manifests.find((m) => m.metadata.labels?.grafana_dashboard === '1') as ConfigMap;
    assert.equal(dashboard.data['lighthouse-bridge.json'], monitoringFiles()[MONITORING_FILES.dashboard]);
  });

  it('renders no monitoring objects with monitoring.enabled=false, and refuses an unknown mode', async () => {
    const off = await renderAs('lhb', ['--api-versions', 'monitoring.coreos.com/v1'], ['monitoring.enabled=false']);
    assert.deepEqual(off.filter((m) => ['ServiceMonitor', 'PrometheusRule', 'ConfigMap'].includes(m.kind)), []);
    await assert.rejects(render('monitoring.mode=podmonitor'), /monitoring\.mode must be one of the following: "auto", "prometheus-operator", "configmap"/);
  });

  it('gives restore Jobs the operator\'s own image', () => {
    type Container = { env: Array<{ name: string; value?: string }> };
    const operator = manifests.find((m) => m.kind === 'Deployment') as Manifest & { spec: { template: { spec: { containers: Container[] } } } };
    assert.equal(operator.spec.template.spec.containers[0]?.env.find((e) => e.name === 'LHB_IMAGE')?.value, 'ghcr.io/lighthouse-bridge/lighthouse-bridge:0.1.0');
  });

  it('renders no backup unless backup.enabled', () => {
    assert.deepEqual(manifests.filter((m) => m.kind === 'CronJob' || m.kind === 'PersistentVolumeClaim' || m.metadata.name.endsWith('-backup')), []);
  });

  type CronJob = Manifest & {
    spec: {
      schedule: string;
      concurrencyPolicy: string;
      successfulJobsHistoryLimit: number;
      failedJobsHistoryLimit: number;
      jobTemplate: { spec: { backoffLimit: number; template: { spec: { serviceAccountName: string; containers: Array<{ image: string; args: string[]; env: Array<{ name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>; resources: unknown; volumeMounts: Array<{ name: string; mountPath: string }> }>; volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string } }> } } } };
    };
  };

  it('renders the backup CronJob: schedule, keep, the claim, the Redis URL the node plugin uses, one run at a time', async () => {
    const enabled = await render('backup.enabled=true', 'backup.schedule=0 */6 * * *', 'backup.keep=3', 'backup.pvc=lhb-archives', 'backup.resources.limits.memory=1Gi');
    assert.deepEqual(enabled.filter((m) => m.kind === 'PersistentVolumeClaim'), [], 'an existing claim is used, not created');
    const cron = enabled.find((m) => m.kind === 'CronJob') as CronJob;
    assert.equal(cron.spec.schedule, '0 */6 * * *');
    assert.equal(cron.spec.concurrencyPolicy, 'Forbid');
    assert.equal(cron.spec.successfulJobsHistoryLimit, 3);
    assert.equal(cron.spec.failedJobsHistoryLimit, 3);
    assert.equal(cron.spec.jobTemplate.spec.backoffLimit, 0);
    const pod = cron.spec.jobTemplate.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'lhb-lighthouse-bridge-backup');
    const [container] = pod.containers;
    assert.equal(container?.image, 'ghcr.io/lighthouse-bridge/lighthouse-bridge:0.1.0');
    assert.deepEqual(container?.args, ['backup', '--to=/backups', '--keep=3']);
    assert.deepEqual(container?.volumeMounts, [{ name: 'backups', mountPath: '/backups' }]);
    assert.deepEqual(pod.volumes, [{ name: 'backups', persistentVolumeClaim: { claimName: 'lhb-archives' } }]);
    assert.deepEqual((container?.resources as { limits: unknown }).limits, { memory: '1Gi' });
    const daemonSet = enabled.find((m) => m.kind === 'DaemonSet') as Manifest & { spec: { template: { spec: { containers: Array<{ name: string; env?: Array<{ name: string; valueFrom?: unknown }> }> } } } };
    const pluginStore = daemonSet.spec.template.spec.containers.find((c) => c.name === 'plugin')?.env?.find((e) => e.name === 'LHB_STORE');
    assert.deepEqual(container?.env.find((e) => e.name === 'LHB_REDIS_URL')?.valueFrom, pluginStore?.valueFrom);

    const created = await render('backup.enabled=true', 'backup.size=5Gi');
    const claim = created.find((m) => m.kind === 'PersistentVolumeClaim') as Manifest & { spec: { resources: { requests: { storage: string } } } };
    assert.equal(claim.spec.resources.requests.storage, '5Gi');
    assert.equal((created.find((m) => m.kind === 'CronJob') as CronJob).spec.jobTemplate.spec.template.spec.volumes[0]?.persistentVolumeClaim?.claimName, claim.metadata.name);

    await assert.rejects(render('backup.enabled=true', 'backup.keep=0'), /backup\.keep: Must be greater than or equal to 1/);
  });

  it('applies the backup to a real API server; its ServiceAccount may list BridgeProjects and nothing more', async () => {
    await applyAll((await render('backup.enabled=true')).filter((m) => m.kind !== 'CustomResourceDefinition'));
    await kube.get(`/apis/batch/v1/namespaces/${ns}/cronjobs/lhb-lighthouse-bridge-backup`);
    const can = (verb: string, group: string, resource: string, namespace?: string, subresource?: string) => allowed('backup', verb, group, resource, namespace, subresource);
    assert.equal(await can('list', 'bridge.lighthouse.dev', 'bridgeprojects'), true);
    assert.equal(await can('list', 'bridge.lighthouse.dev', 'bridgeprojects', 'team'), true);
    for (const [verb, group, resource, sub] of [
      ['watch', 'bridge.lighthouse.dev', 'bridgeprojects'],
      ['patch', 'bridge.lighthouse.dev', 'bridgeprojects'],
      ['patch', 'bridge.lighthouse.dev', 'bridgeprojects', 'status'],
      ['get', '', 'secrets'],
      ['list', '', 'secrets'],
      ['create', 'batch', 'jobs'],
    ] as const) {
      assert.equal(await can(verb, group, resource, 'team', sub), false, `${verb} ${resource}${sub ? `/${sub}` : ''}`);
    }
  });
});
