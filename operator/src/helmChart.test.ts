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
};

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
  const ns = 'lighthouse-bridge';
  let env: KubeEnv;
  let kube: KubeClient;
  let manifests: Manifest[];

  before(async () => {
    const rendered = await helm(['template', 'lhb', CHART, '--namespace', ns, '--include-crds', '--set', 'redis.url=redis://redis.example:6379']);
    manifests = parseAllDocuments(rendered)
      .map((d) => d.toJS() as Manifest | null)
      .filter((m): m is Manifest => m !== null);
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

  it('applies cleanly to a real API server (schemas, RBAC, CRD established)', async () => {
    for (const m of manifests) {
      await kube.apply(pathOf(m, ns), { ...m, metadata: { ...m.metadata, namespace: COLLECTIONS[m.kind]?.namespaced ? ns : undefined } });
    }
    await waitForCrd(kube, 'bridgeprojects.bridge.lighthouse.dev');
    // The operator's ServiceAccount may do what the operator does, and no more than that.
    const can = async (verb: string, group: string, resource: string, namespace?: string, subresource?: string) => {
      const review = await kube.create<{ status: { allowed: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: `system:serviceaccount:${ns}:lhb-lighthouse-bridge-operator`,
          groups: ['system:serviceaccounts'],
          resourceAttributes: { verb, group, resource, ...(namespace ? { namespace } : {}), ...(subresource ? { subresource } : {}) },
        },
      });
      return review.status.allowed;
    };
    assert.equal(await can('watch', 'bridge.lighthouse.dev', 'bridgeprojects'), true);
    assert.equal(await can('patch', 'bridge.lighthouse.dev', 'bridgeprojects', 'team', 'status'), true);
    assert.equal(await can('create', '', 'secrets', 'team'), true);
    assert.equal(await can('update', 'coordination.k8s.io', 'leases', ns), true);
    assert.equal(await can('update', 'coordination.k8s.io', 'leases', 'other'), false);
    assert.equal(await can('delete', '', 'pods', 'team'), false);
  });
});
