import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { kubeToolsAvailable, kubeToolsDir, startKube, type KubeEnv } from '@lighthouse-bridge/test/kube';
import type { KubeClient } from './kubeClient.js';
import { CRD_FILE, ensureNamespace, kubeFor, waitForCrd } from './testing/testEnv.js';

const CHART = fileURLToPath(new URL('../../charts/lighthouse-bridge', import.meta.url));
const HELM = join(kubeToolsDir(), 'helm');
const RELEASE_NAMESPACE = 'lighthouse-bridge';
const helmAvailable = (() => {
  try {
    accessSync(HELM, constants.X_OK);
    return true;
  } catch {
    return false;
  }
})();
const skip = !helmAvailable ? 'helm not extracted: run bash test/setup/tools/helm.sh' : !kubeToolsAvailable() ? 'kube-apiserver not built: run bash test/setup/tools/kube.sh' : false;

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

function helm(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(HELM, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => (error ? reject(new Error(`helm ${args.join(' ')}: ${stderr}`)) : resolve(stdout)));
  });
}

/** REST collection of each kind the chart renders. */
const COLLECTIONS: Record<string, { group: string; plural: string; namespaced: boolean }> = {
  CustomResourceDefinition: { group: 'apis/apiextensions.k8s.io/v1', plural: 'customresourcedefinitions', namespaced: false },
  ServiceAccount: { group: 'api/v1', plural: 'serviceaccounts', namespaced: true },
  Secret: { group: 'api/v1', plural: 'secrets', namespaced: true },
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
};

async function render(...set: string[]): Promise<Manifest[]> {
  const rendered = await helm(['template', 'lhb', CHART, '--namespace', RELEASE_NAMESPACE, '--include-crds', '--set', 'redis.url=redis://redis.example:6379', ...set.flatMap((s) => ['--set', s])]);
  return parseAllDocuments(rendered)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

function pathOf(m: Manifest, namespace: string): string {
  const c = COLLECTIONS[m.kind];
  if (!c) throw new Error(`the chart renders a ${m.kind}, which this test does not know how to apply`);
  return `/${c.group}${c.namespaced ? `/namespaces/${m.metadata.namespace ?? namespace}` : ''}/${c.plural}/${m.metadata.name}`;
}

// Needs neither helm nor an API server, so it runs everywhere.
describe("the chart's CRDs", () => {
  it('are copies of crds/, the source (`make build` copies them)', async () => {
    const source = dirname(CRD_FILE);
    const inChart = join(CHART, 'crds');
    const [names, chartNames] = await Promise.all([readdir(source), readdir(inChart)]);
    assert.deepEqual(chartNames.sort(), names.sort(), 'the same files');
    for (const name of names) {
      assert.equal(await readFile(join(inChart, name), 'utf8'), await readFile(join(source, name), 'utf8'), `charts/lighthouse-bridge/crds/${name} differs from crds/${name}: edit crds/ and run make build`);
    }
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

    type Pod = { containers: Array<{ name: string; args: string[]; securityContext?: { privileged?: boolean }; volumeMounts: Array<{ name: string; mountPath: string; mountPropagation?: string }> }> };
    const ds = find('DaemonSet', 'csi-node') as Manifest & { spec: { template: { spec: Pod } } };
    const plugin = ds.spec.template.spec.containers.find((c) => c.name === 'plugin');
    assert.ok(plugin);
    assert.deepEqual(plugin.args.slice(0, 6), ['csi', '--endpoint', 'unix:///csi/csi.sock', '--node-id', '$(NODE_NAME)', '--require-access-config']);
    assert.equal(plugin.securityContext?.privileged, true);
    assert.ok(plugin.volumeMounts.some((v) => v.mountPath === '/dev/fuse'));
    assert.equal(plugin.volumeMounts.find((v) => v.mountPath === '/var/lib/kubelet/pods')?.mountPropagation, 'Bidirectional');
    assert.ok(ds.spec.template.spec.containers.some((c) => c.name === 'node-driver-registrar'));

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
  const allowed = async (account: string, verb: string, group: string, resource: string, namespace?: string, subresource?: string) => {
    const review = await kube.create<{ status: { allowed: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: `system:serviceaccount:${ns}:lhb-lighthouse-bridge-${account}`,
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
    assert.equal(await can('update', 'batch', 'jobs', 'team'), false);
    assert.equal(await can('update', 'coordination.k8s.io', 'leases', ns), true);
    assert.equal(await can('update', 'coordination.k8s.io', 'leases', 'other'), false);
    assert.equal(await can('delete', '', 'pods', 'team'), false);
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

    await assert.rejects(render('backup.enabled=true', 'backup.keep=0'), /backup\.keep must be at least 1/);
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
