import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { kubeToolsAvailable } from '@lighthouse-bridge/test/kube';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { resourcePath, type BridgeProject, type Condition } from './bridgeProject.js';
import { REPORTING_CONTROLLER } from './events.js';
import { CRD_FILE, installCrd, startOperatorWorld, type OperatorWorld } from './testing/testEnv.js';

const skip = kubeToolsAvailable() ? false : 'kube-apiserver/etcd not built: run bash test/setup/tools/kube.sh';
const WAIT_MS = 20_000;
const NS = 'team';

interface KubeEvent {
  type: string;
  reason: string;
  note: string;
  action: string;
  reportingController: string;
  regarding: { kind: string; name: string; uid: string };
}

/** The CRD as it was before ADR 0064: policy patterns not checked at admission. */
function withoutPatternCheck(crd: unknown): unknown {
  return JSON.parse(JSON.stringify(crd), (key, value: unknown) =>
    (key === 'command' || key === 'content') && typeof value === 'object' && value !== null ? { ...value, 'x-kubernetes-validations': undefined } : value,
  );
}

describe('PolicyValid and Events on a real kube-apiserver and Redis', { skip }, () => {
  let world: OperatorWorld;
  let strictCrd: Record<string, unknown>;
  const logs: string[] = [];

  before(async () => {
    world = await startOperatorWorld([NS], (level, message, fields) => logs.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`));
    strictCrd = parse(await readFile(CRD_FILE, 'utf8')) as Record<string, unknown>;
  });
  after(async () => {
    await world?.stop();
  });

  const rules = (command: string) => ({ policy: { rules: [{ name: 'no-rm', decision: 'deny', match: { command } }] } });
  const get = (name: string) => world.kube.get<BridgeProject>(resourcePath(NS, name));
  const condition = (bp: BridgeProject, type: Condition['type']) => bp.status?.conditions?.find((c) => c.type === type);
  const settled = (name: string, type: Condition['type'], status: Condition['status']) =>
    eventually(`${name} ${type}=${status}`, async () => {
      const bp = await get(name);
      return condition(bp, type)?.status === status && bp.status?.observedGeneration === bp.metadata.generation ? bp : undefined;
    }, WAIT_MS, 100);
  const storedConfig = async (name: string) => JSON.parse((await world.admin.get(`lhb:{${NS}/${name}}:config`)) ?? 'null') as { generation: number; policy: { rules: Array<{ match: { command: string } }> } } | null;
  const eventsOf = async (name: string) =>
    (await world.kube.get<{ items: KubeEvent[] }>(`/apis/events.k8s.io/v1/namespaces/${NS}/events`)).items.filter((e) => e.regarding.name === name);
  const admits = (query: string) =>
    world.kube.create(`${resourcePath(NS)}${query}`, { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name: 'probe' }, spec: rules('rm (-rf') }).then(() => true, () => false);
  const waitEvent = (name: string, reason: string) =>
    eventually(`Event ${reason} for ${name}`, async () => (await eventsOf(name)).find((e) => e.reason === reason), WAIT_MS, 100).catch((error: Error) =>
      assert.fail(`${error.message}\noperator log:\n${logs.slice(-8).join('\n')}`),
    );

  it('a valid project: PolicyValid=True, Ready=True, and Normal Events for what was done', async () => {
    await world.kube.create(resourcePath(NS), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name: 'good' }, spec: rules('rm -rf /') });
    const bp = await settled('good', 'Ready', 'True');
    assert.equal(condition(bp, 'PolicyValid')?.reason, 'Compiled');
    const written = await waitEvent('good', 'ConfigWritten');
    assert.deepEqual([written.type, written.action, written.reportingController, written.regarding.kind, written.regarding.uid], ['Normal', 'Reconcile', REPORTING_CONTROLLER, 'BridgeProject', bp.metadata.uid]);
    assert.match(written.note, /generation 1 written/);
    assert.equal((await waitEvent('good', 'AclApplied')).type, 'Normal');
  });

  it('a policy the nodes refuse (CRD older than ADR 0064): PolicyValid=False naming rule and field, Ready=False, the last good config kept, one Warning', async () => {
    // Helm never upgrades a chart's CRDs, so a cluster can run this operator with the CRD of an
    // older release, which let any pattern through.
    await installCrd(world.kube, withoutPatternCheck(strictCrd) as Record<string, unknown>);
    await eventually('the old CRD served', () => admits('?dryRun=All'), WAIT_MS, 100);
    await world.kube.patch(resourcePath(NS, 'good'), 'merge', { spec: rules('rm (-rf') });
    // Quoted whole in the message: 1.2 kB of UTF-8, over the 1 kB an Event's note may hold.
    await world.kube.create(resourcePath(NS), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name: 'fresh' }, spec: rules(`(${'é'.repeat(600)}`) });

    const good = await settled('good', 'PolicyValid', 'False');
    const policy = condition(good, 'PolicyValid');
    assert.equal(policy?.reason, 'InvalidPolicy');
    assert.match(policy?.message ?? '', /^spec\.policy: policy rule 1 \("no-rm"\): match\.command is not a valid regular expression: .*missing closing \)/);
    assert.match(policy?.message ?? '', /the project config of generation 1 stays in Redis, and node plugins keep enforcing it$/);
    assert.deepEqual([condition(good, 'Ready')?.status, condition(good, 'Ready')?.reason], ['False', 'PolicyNotReady']);
    assert.equal(condition(good, 'RedisReady')?.status, 'True', 'the ACL user is still applied');
    const kept = await storedConfig('good');
    assert.deepEqual([kept?.generation, kept?.policy.rules[0]?.match.command], [1, 'rm -rf /']);

    const fresh = await settled('fresh', 'PolicyValid', 'False');
    assert.match(condition(fresh, 'PolicyValid')?.message ?? '', /match\.command is not a valid regular expression.*; no project config is written until the policy is fixed$/);
    assert.equal(condition(fresh, 'Ready')?.status, 'False');
    assert.equal(await storedConfig('fresh'), null);

    const long = await waitEvent('fresh', 'InvalidPolicy');
    assert.ok(Buffer.byteLength(long.note) <= 1024 && long.note.endsWith('é…'), `${Buffer.byteLength(long.note)} bytes`);
    const warning = await waitEvent('good', 'InvalidPolicy');
    assert.equal(warning.type, 'Warning');
    assert.match(warning.note, /^PolicyValid: spec\.policy: policy rule 1 \("no-rm"\): match\.command/);
    // Relists revisit the project every 2 s; the condition has not changed, so no new Event.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    assert.equal((await eventsOf('good')).filter((e) => e.reason === 'InvalidPolicy').length, 1);

    // The current CRD is installed: 'fresh' stays as stored. 'good' is fixed, its config written, Ready again.
    await installCrd(world.kube, strictCrd);
    await eventually('the current CRD served', async () => !(await admits('?dryRun=All')), WAIT_MS, 100);
    await world.kube.patch(resourcePath(NS, 'good'), 'merge', { spec: rules('rm -rf ~') });
    await settled('good', 'Ready', 'True');
    assert.equal((await storedConfig('good'))?.policy.rules[0]?.match.command, 'rm -rf ~');
  });

  it('Redis down: Warning Events (RedisUnavailable; StatusRejected where the stored spec fails the current CRD), one per reason', async () => {
    await world.redis.kill();
    try {
      const warning = await waitEvent('good', 'RedisUnavailable');
      assert.equal(warning.type, 'Warning');
      assert.match(warning.note, /^RedisReady: /);
      // The status write validates the whole object, and 'fresh' still holds a pattern the current CRD refuses.
      const rejected = await waitEvent('fresh', 'StatusRejected');
      assert.equal(rejected.type, 'Warning');
      assert.match(rejected.note, /HTTP 422 Invalid: .*spec\.policy\.rules\[0\]\.match\.command/s);
    } finally {
      await world.redis.restart();
    }
    await settled('good', 'RedisReady', 'True');
    const events = await eventsOf('good');
    // AclApplied was recorded at creation; its return within the window is not repeated.
    assert.equal(events.filter((e) => e.reason === 'AclApplied').length, 1);
    assert.equal(events.filter((e) => e.reason === 'RedisUnavailable').length, 1);
    assert.equal((await eventsOf('fresh')).filter((e) => e.reason === 'StatusRejected').length, 1);
  });
});
