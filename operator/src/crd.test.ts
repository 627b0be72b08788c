import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { kubeToolsAvailable, startKube, type KubeEnv } from '@lighthouse-bridge/test/kube';
import { resourcePath, type BridgeProject } from './bridgeProject.js';
import { KubeApiError, type KubeClient } from './kubeClient.js';
import { ensureNamespace, installBridgeProjectCrd, kubeFor } from './testing/testEnv.js';

const skip = kubeToolsAvailable() ? false : 'kube-apiserver/etcd not built: run bash test/setup/tools/kube.sh';

describe('BridgeProject CRD on a real kube-apiserver', { skip }, () => {
  let env: KubeEnv;
  let kube: KubeClient;
  const ns = 'crd-test';

  before(async () => {
    env = await startKube();
    kube = await kubeFor(env.kubeconfig);
    await installBridgeProjectCrd(kube);
    await ensureNamespace(kube, ns);
  });
  after(async () => {
    await env?.stop();
  });

  const create = (name: string, spec: unknown) =>
    kube.create<BridgeProject>(resourcePath(ns), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name }, spec });

  it('accepts spec: {} and fills every default', async () => {
    const bp = await create('empty', {});
    assert.deepEqual(bp.spec, {
      storage: { retentionDays: 30, snapshotInterval: 1000, deletionPolicy: 'Retain' },
      limits: { maxFileBytes: 67108864, maxFiles: 100000, maxProjectBytes: 4294967296, maxPathBytes: 4096, maxNameBytes: 255, maxAnnotationBytes: 65536 },
      access: { readWrite: [], readOnly: [], annotate: [] },
      policy: { defaultDecision: 'deny', escalationTimeoutSeconds: 30, mode: 'extend', rules: [] },
      monitoring: { enabled: true, slo: { validationP99Ms: 2, fuseP99Ms: 5, storeAppendP99Ms: 10, errorRatePercent: 1 } },
    });
  });

  it('accepts a full spec with ordered rules and keeps their order', async () => {
    const rules = [
      { name: 'no-force-push', decision: 'deny', priority: 10, tools: ['Bash'], match: { command: 'git push .*--force' }, reason: 'history is shared' },
      { name: 'docs', decision: 'allow', match: { paths: ['docs/**'] } },
      { name: 'secrets', decision: 'escalate', agents: ['junior-*'], match: { content: 'BEGIN [A-Z ]*PRIVATE KEY' } },
    ];
    const bp = await create('full', {
      storage: { deletionPolicy: 'Delete', retentionDays: 7 },
      limits: { maxFileBytes: 1024, maxProjectBytes: 1024 },
      // A bare NAME is a service account name, which may contain dots.
      access: { readWrite: ['agents', 'ci/*', 'build.bot'], readOnly: ['*/viewer', `ns/${'a'.repeat(63)}.${'b'.repeat(63)}`] },
      policy: { defaultDecision: 'allow', mode: 'replace', rules },
    });
    assert.deepEqual(bp.spec?.policy?.rules?.map((r) => r.name), ['no-force-push', 'docs', 'secrets']);
    assert.equal(bp.spec?.policy?.rules?.[1]?.priority, 0);
    assert.deepEqual(bp.spec?.access?.readWrite, ['agents', 'ci/*', 'build.bot']);
  });

  it("accepts the chart's example project", async () => {
    const example = parse(await readFile(new URL('../../charts/lighthouse-bridge/examples/bridgeproject.yaml', import.meta.url), 'utf8')) as BridgeProject;
    await ensureNamespace(kube, example.metadata.namespace);
    const created = await kube.create<BridgeProject>(resourcePath(example.metadata.namespace), example);
    assert.equal(created.spec?.policy?.rules?.length, 3);
    assert.equal(created.spec?.limits?.maxFiles, 100000, 'unset limits get their defaults');
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['unknown deletion policy', { storage: { deletionPolicy: 'Shred' } }, /spec\.storage\.deletionPolicy: Unsupported value: "Shred"/],
    ['file larger than project', { limits: { maxFileBytes: 2048, maxProjectBytes: 1024 } }, /maxFileBytes must not exceed limits\.maxProjectBytes/],
    ['name longer than path', { limits: { maxPathBytes: 100, maxNameBytes: 200 } }, /maxNameBytes must not exceed limits\.maxPathBytes/],
    ['zero retention', { storage: { retentionDays: 0 } }, /retentionDays: Invalid value: 0: .*greater than or equal to 1/],
    ['duplicate rule names', { policy: { rules: [{ name: 'a', decision: 'allow', match: { command: 'x' } }, { name: 'a', decision: 'deny', match: { command: 'y' } }] } }, /policy rule names must be unique/],
    ['rule without decision', { policy: { rules: [{ name: 'a' }] } }, /spec\.policy\.rules\[0\]\.decision: Required value/],
    ['unknown decision', { policy: { rules: [{ name: 'a', decision: 'maybe' }] } }, /decision: Unsupported value: "maybe"/],
    ['empty match', { policy: { rules: [{ name: 'a', decision: 'deny', match: {} }] } }, /a rule's match needs at least one of command, paths, content/],
    ['bad service account', { access: { readWrite: ['Not_A_Name'] } }, /spec\.access\.readWrite\[0\]: Invalid value/],
    ['escalation timeout too long', { policy: { escalationTimeoutSeconds: 86400 } }, /escalationTimeoutSeconds: Invalid value: 86400: .*less than or equal to 3600/],
    ['zero error rate', { monitoring: { slo: { errorRatePercent: 0 } } }, /errorRatePercent: Invalid value: 0/],
    ['unknown mode', { policy: { mode: 'merge' } }, /spec\.policy\.mode: Unsupported value: "merge"/],
  ];
  for (const [title, spec, message] of bad) {
    it(`refuses ${title} with a readable message`, async () => {
      const error = await create(`bad-${title.replace(/[^a-z]+/g, '-')}`.slice(0, 60).replace(/-$/, ''), spec).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof KubeApiError, `expected a refusal for ${title}`);
      assert.equal(error.status, 422);
      assert.match(error.message, message);
    });
  }

  it('refuses a name that is not a DNS label, as project ids require', async () => {
    const error = await create('has.dots', {}).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof KubeApiError);
    assert.equal(error.status, 422);
  });

  it('shows Ready, Head, Mounts and Age as printer columns', async () => {
    const crd = await kube.get<{ spec: { versions: Array<{ additionalPrinterColumns: Array<{ name: string }> }> } }>(
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/bridgeprojects.bridge.lighthouse.dev',
    );
    assert.deepEqual(crd.spec.versions[0]?.additionalPrinterColumns.map((c) => c.name), ['Ready', 'Head', 'Mounts', 'Age']);
  });
});
