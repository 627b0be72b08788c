import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { kubeToolsAvailable, startKube, type KubeEnv } from '@lighthouse-bridge/test/kube';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { mountMember, refreshMounts } from '@lighthouse-bridge/core/redis';
import { registry, SLO_METRIC } from '@lighthouse-bridge/core/observability';
import { FINALIZER, resourcePath, toProjectConfig, type BridgeProject, type Condition } from './bridgeProject.js';
import type { KubeClient } from './kubeClient.js';
import type { RunningOperator } from './operator.js';
import { ensureNamespace, installBridgeProjectCrd, installCrd, kubeFor, startTestOperator } from './testing/testEnv.js';
import { eventually } from '@lighthouse-bridge/test/eventually';

const skip = kubeToolsAvailable() ? false : 'kube-apiserver/etcd not built: run bash test/setup/tools/kube.sh';
const WAIT_MS = 20_000;

interface SecretObject {
  metadata: { ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }> };
  data: Record<string, string>;
}

describe('operator against a real kube-apiserver and a real Redis', { skip }, () => {
  let env: KubeEnv;
  let kube: KubeClient;
  let redis: RedisServer;
  let admin: Redis;
  let operator: RunningOperator | undefined;
  const logs: string[] = [];

  const run = async (): Promise<RunningOperator> =>
    startTestOperator(env.kubeconfig, redis.url, (level, message, fields) => logs.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`));

  before(async () => {
    [env, redis] = await Promise.all([startKube(), startRedis({ aclFile: true })]);
    admin = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    kube = await kubeFor(env.kubeconfig);
    await installBridgeProjectCrd(kube);
    await Promise.all(['team-a', 'team-b', 'team'].map((ns) => ensureNamespace(kube, ns)));
    operator = await run();
  });
  after(async () => {
    await operator?.stop();
    admin?.disconnect();
    await Promise.all([env?.stop(), redis?.stop()]);
  });

  const path = (ns: string, name?: string) => resourcePath(ns, name);
  const create = (ns: string, name: string, spec: unknown) =>
    kube.create<BridgeProject>(path(ns), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name }, spec });
  const get = (ns: string, name: string) => kube.get<BridgeProject>(path(ns, name));
  const condition = (bp: BridgeProject, type: Condition['type']) => bp.status?.conditions?.find((c) => c.type === type);
  const waitCondition = (ns: string, name: string, type: Condition['type'], status: Condition['status'], reason?: string) =>
    eventually(`${ns}/${name} ${type}=${status}${reason ? ` (${reason})` : ''}`, async () => {
      const bp = await get(ns, name);
      const c = condition(bp, type);
      return c?.status === status && (reason === undefined || c.reason === reason) && bp.status?.observedGeneration === bp.metadata.generation ? bp : undefined;
    }, WAIT_MS, 100);
  const secretOf = async (ns: string, bp: BridgeProject) => kube.get<SecretObject>(`/api/v1/namespaces/${ns}/secrets/${bp.status?.secretName}`);
  const password = (secret: SecretObject) => Buffer.from(secret.data.password ?? '', 'base64').toString('utf8');
  const asUser = async (user: string, pass: string) => {
    const client = new Redis(redis.port, '127.0.0.1', { username: user, password: pass, maxRetriesPerRequest: 1, lazyConnect: true, enableReadyCheck: false, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      throw error;
    }
    return client;
  };

  it('creates the ACL user, its Secret, the config in Redis and the status', async () => {
    const rules = [{ name: 'no-rm', decision: 'deny', tools: ['Bash'], match: { command: 'rm -rf /' } }];
    await create('team-a', 'alpha', { policy: { rules }, access: { readWrite: ['agents'] } });
    const bp = await waitCondition('team-a', 'alpha', 'Ready', 'True', 'Reconciled');
    assert.equal(condition(bp, 'RedisReady')?.reason, 'AclApplied');
    assert.equal(condition(bp, 'MonitoringReady')?.reason, 'SloSeriesWritten');
    assert.equal(bp.status?.redisUser, 'lhb-team-a.alpha');
    assert.equal(bp.status?.head, 0);
    assert.equal(bp.status?.activeMounts, 0);
    assert.ok(bp.metadata.finalizers?.includes(FINALIZER));

    const secret = await secretOf('team-a', bp);
    assert.deepEqual(secret.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]), [['BridgeProject', 'alpha', bp.metadata.uid, true]]);
    assert.equal(password(secret).length, 48);

    const stored = JSON.parse((await admin.get('lhb:{team-a/alpha}:config')) ?? 'null') as unknown;
    assert.deepEqual(stored, JSON.parse(JSON.stringify(toProjectConfig(bp.spec, bp.metadata.generation))));
    assert.equal((stored as { access: { readWrite: string[] } }).access.readWrite[0], 'agents');

    // Monitoring is the chart's, once per fleet: nothing per project in the project's namespace.
    const configMaps = await kube.get<{ items: Array<{ metadata: { name: string } }> }>('/api/v1/namespaces/team-a/configmaps?labelSelector=bridge.lighthouse.dev%2Fproject%3Dalpha');
    assert.deepEqual(configMaps.items, []);
  });

  it("isolates projects: a project's user reaches its own keys and channels only", async () => {
    await create('team-b', 'beta', {});
    const beta = await waitCondition('team-b', 'beta', 'Ready', 'True');
    const alpha = await get('team-a', 'alpha');
    await admin.set('lhb:{team-b/beta}:snap', 'secret-b');

    const a = await asUser('lhb-team-a.alpha', password(await secretOf('team-a', alpha)));
    try {
      await admin.set('lhb:{team-a/alpha}:snap', 'mine');
      assert.equal(await a.get('lhb:{team-a/alpha}:snap'), 'mine');
      // Read-only on its own keys too (ADR 0062): the node plugin writes them.
      await assert.rejects(a.xadd('lhb:{team-a/alpha}:log', '1-0', 'e', '{}'), /NOPERM/);
      await assert.rejects(a.publish('lhb:{team-a/alpha}:events', 'x'), /NOPERM/);
      await assert.rejects(a.get('lhb:{team-b/beta}:snap'), /NOPERM/);
      await assert.rejects(a.set('lhb:{team-b/beta}:snap', 'overwritten'), /NOPERM/);
      await assert.rejects(a.xadd('lhb:{team-b/beta}:log', '*', 'e', '{}'), /NOPERM/);
      await assert.rejects(a.publish('lhb:{team-b/beta}:events', 'x'), /NOPERM/);
      await assert.rejects(a.get('other'), /NOPERM/);
      await assert.rejects(a.call('KEYS', '*'), /NOPERM/);
      await assert.rejects(a.call('SCAN', '0'), /NOPERM/);
      await assert.rejects(a.call('FLUSHALL'), /NOPERM/);
      await assert.rejects(a.call('CONFIG', 'GET', 'dir'), /NOPERM/);
      await assert.rejects(a.call('ACL', 'LIST'), /NOPERM/);
      await assert.rejects(a.eval("return redis.call('GET', KEYS[1])", 1, 'lhb:{team-b/beta}:snap'), /NOPERM|No permissions/);
    } finally {
      a.disconnect();
    }
    assert.equal(await admin.get('lhb:{team-b/beta}:snap'), 'secret-b');
    const probe = admin.duplicate();
    await assert.rejects(probe.call('AUTH', 'lhb-team-b.beta', 'wrong-password'), /WRONGPASS/).finally(() => probe.disconnect());
    const b = await asUser('lhb-team-b.beta', password(await secretOf('team-b', beta)));
    assert.equal(await b.get('lhb:{team-b/beta}:snap'), 'secret-b');
    b.disconnect();
  });

  it("keeps the project's user from rewriting its config and from server-wide key tracking", async () => {
    const a = await asUser('lhb-team-a.alpha', password(await secretOf('team-a', await get('team-a', 'alpha'))));
    try {
      const config = await admin.get('lhb:{team-a/alpha}:config');
      assert.ok(config, 'the operator wrote the config');
      assert.equal(await a.get('lhb:{team-a/alpha}:config'), config);
      await assert.rejects(a.set('lhb:{team-a/alpha}:config', '{"access":{}}'), /NOPERM/);
      await assert.rejects(a.del('lhb:{team-a/alpha}:config'), /NOPERM/);
      await assert.rejects(a.eval("return redis.call('SET', KEYS[1], 'x')", 1, 'lhb:{team-a/alpha}:config'), /NOPERM|No permissions/);
      assert.equal(await admin.get('lhb:{team-a/alpha}:config'), config);
      // No key kind is writable with the project's credentials: the node plugin and operator write them (ADR 0062).
      await assert.rejects(a.hset('lhb:{team-a/alpha}:blob:abc', 'size', '0'), /NOPERM/);
      await assert.rejects(a.set('lhb:{team-a/alpha}:blob:abc:0', 'chunk'), /NOPERM/);
      await assert.rejects(a.zadd('lhb:{team-a/alpha}:snaps', 1, '1'), /NOPERM/);
      await assert.rejects(a.set('lhb:{team-a/alpha}:dec:k', '{}', 'EX', 60), /NOPERM/);
      await assert.rejects(a.zadd('lhb:{team-a/alpha}:mounts', Date.now() + 60_000, 'node:/target'), /NOPERM/);
      // BCAST tracking would push (over RESP3) the names of every key changed on the server, other tenants' included.
      await assert.rejects(a.call('CLIENT', 'TRACKING', 'on', 'BCAST'), /NOPERM/);
    } finally {
      a.disconnect();
    }
  });

  it('gives team/a-alpha and team-a/alpha different users (no name clash)', async () => {
    await create('team', 'a-alpha', {});
    const other = await waitCondition('team', 'a-alpha', 'Ready', 'True');
    assert.notEqual(other.status?.redisUser, (await get('team-a', 'alpha')).status?.redisUser);
    const a = await asUser('lhb-team-a.alpha', password(await secretOf('team-a', await get('team-a', 'alpha'))));
    assert.equal(await a.get('lhb:{team-a/alpha}:snap'), 'mine');
    await assert.rejects(a.get('lhb:{team/a-alpha}:snap'), /NOPERM/);
    a.disconnect();
  });

  it('reports head and active mounts from Redis', async () => {
    await admin.xadd('lhb:{team-a/alpha}:log', '1-0', 'e', '{}');
    await admin.xadd('lhb:{team-a/alpha}:log', '2-0', 'e', '{}');
    await admin.xadd('lhb:{team-a/alpha}:log', '3-0', 'e', '{}');
    // As two node plugins record their publishes, with the producer's own functions
    // (csi-driver/src/csi/mountRegistry.ts; the real plugin is counted in cli/src/mountRegistry.test.ts).
    await refreshMounts(admin, { namespace: 'team-a', name: 'alpha' }, [mountMember('node-1', '/pods/1'), mountMember('node-2', '/pods/2')], 60_000);
    await eventually('head 3 and 2 mounts', async () => {
      const bp = await get('team-a', 'alpha');
      return bp.status?.head === 3 && bp.status?.activeMounts === 2;
    }, WAIT_MS, 100);
  });

  it('follows spec changes: new generation, new policy version in the config', async () => {
    const before = JSON.parse((await admin.get('lhb:{team-a/alpha}:config')) ?? '{}') as { policy: { version: string } };
    await kube.patch(path('team-a', 'alpha'), 'merge', { spec: { policy: { defaultDecision: 'allow' }, limits: { maxFiles: 10 } } });
    const bp = await eventually('generation 2 observed', async () => {
      const current = await get('team-a', 'alpha');
      return current.metadata.generation === 2 && current.status?.observedGeneration === 2 ? current : undefined;
    }, WAIT_MS, 100);
    assert.equal(condition(bp, 'Ready')?.observedGeneration, 2);
    const after = JSON.parse((await admin.get('lhb:{team-a/alpha}:config')) ?? '{}') as { generation: number; limits: { maxFiles: number }; policy: { version: string; defaultDecision: string } };
    assert.equal(after.generation, 2);
    assert.equal(after.limits.maxFiles, 10);
    assert.equal(after.policy.defaultDecision, 'allow');
    assert.notEqual(after.policy.version, before.policy.version);
  });

  it('restores an ACL user removed behind its back (level-triggered)', async () => {
    await admin.call('ACL', 'DELUSER', 'lhb-team-b.beta');
    await eventually('ACL user recreated', async () => (await admin.call('ACL', 'GETUSER', 'lhb-team-b.beta')) !== null, WAIT_MS, 100);
  });

  it('reports RedisReady=False while Redis is down and recovers when it is back', async () => {
    await redis.kill();
    await kube.patch(path('team-a', 'alpha'), 'merge', { spec: { storage: { retentionDays: 9 } } });
    const down = await waitCondition('team-a', 'alpha', 'RedisReady', 'False', 'RedisUnavailable');
    assert.equal(condition(down, 'Ready')?.status, 'False');
    assert.equal(condition(down, 'Ready')?.reason, 'RedisNotReady');
    assert.equal(condition(down, 'MonitoringReady')?.status, 'True');
    await redis.restart();
    admin.disconnect();
    admin = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    await waitCondition('team-a', 'alpha', 'Ready', 'True');
    const config = JSON.parse((await admin.get('lhb:{team-a/alpha}:config')) ?? '{}') as { storage: { retentionDays: number } };
    assert.equal(config.storage.retentionDays, 9);
  });

  /** The operator's SLO series for a project, as its /metrics serves them (this process's registry). */
  const sloSeries = async (ns: string, name: string): Promise<Record<string, number>> => {
    const found: Record<string, number> = {};
    for (const metric of (await registry.getMetricsAsJSON()).filter((m) => (Object.values(SLO_METRIC) as string[]).includes(m.name))) {
      const value = (metric.values as Array<{ labels: Record<string, string | number>; value: number }>).find((v) => v.labels.namespace === ns && v.labels.project === name)?.value;
      if (value !== undefined) found[metric.name] = value;
    }
    return found;
  };

  it("writes the project's SLO as series for the chart's fleet rules, and follows spec changes", async () => {
    await kube.patch(path('team-a', 'alpha'), 'merge', { spec: { monitoring: { slo: { fuseP99Ms: 3, errorRatePercent: 2.5 } } } });
    await waitCondition('team-a', 'alpha', 'MonitoringReady', 'True', 'SloSeriesWritten');
    assert.deepEqual(await sloSeries('team-a', 'alpha'), {
      [SLO_METRIC.validationP99]: 0.002,
      [SLO_METRIC.fuseP99]: 0.003,
      [SLO_METRIC.storeAppendP99]: 0.01,
      [SLO_METRIC.errorRatio]: 0.025,
    });
  });

  /** A minimal stand-in for the Prometheus Operator's CRD. */
  const installMonitoringCrd = (kind: string, plural: string) =>
    installCrd(kube, {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `${plural}.monitoring.coreos.com` },
      spec: {
        group: 'monitoring.coreos.com',
        scope: 'Namespaced',
        names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    });

  it('removes the PrometheusRule, ServiceMonitor and ConfigMaps an older operator created per project (upgrade)', async () => {
    await installMonitoringCrd('PrometheusRule', 'prometheusrules');
    await installMonitoringCrd('ServiceMonitor', 'servicemonitors');
    await operator?.stop();
    operator = undefined;
    await create('team-a', 'legacy', {});
    const legacy = [
      ['/apis/monitoring.coreos.com/v1/namespaces/team-a/prometheusrules', { apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { name: 'legacy-bridge-alerts' }, spec: {} }],
      ['/apis/monitoring.coreos.com/v1/namespaces/team-a/servicemonitors', { apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: { name: 'legacy-bridge-metrics' }, spec: {} }],
      ['/api/v1/namespaces/team-a/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'legacy-bridge-alerts' }, data: {} }],
      ['/api/v1/namespaces/team-a/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'legacy-bridge-dashboard' }, data: {} }],
    ] as const;
    for (const [collection, body] of legacy) await kube.create(collection, body);
    operator = await run();
    await waitCondition('team-a', 'legacy', 'MonitoringReady', 'True', 'SloSeriesWritten');
    for (const [collection, body] of legacy) assert.equal(await kube.getOptional(`${collection}/${body.metadata.name}`), undefined, `${collection}/${body.metadata.name}`);
  });

  it('monitoring.enabled=false removes the SLO series, so no alert fires for the project, and says so', async () => {
    await kube.patch(path('team-a', 'alpha'), 'merge', { spec: { monitoring: { enabled: false } } });
    await waitCondition('team-a', 'alpha', 'MonitoringReady', 'True', 'Disabled');
    assert.deepEqual(await sloSeries('team-a', 'alpha'), {});
    assert.equal(condition(await get('team-a', 'alpha'), 'Ready')?.status, 'True');
  });

  it("a deleted project's SLO series go with it", async () => {
    assert.notDeepEqual(await sloSeries('team-a', 'legacy'), {});
    await kube.delete(path('team-a', 'legacy'));
    await eventually('team-a/legacy is gone', async () => ((await kube.getOptional(path('team-a', 'legacy'))) === undefined ? true : undefined), WAIT_MS, 100);
    await eventually('its SLO series are removed', async () => (Object.keys(await sloSeries('team-a', 'legacy')).length === 0 ? true : undefined), WAIT_MS, 100);
  });

  it('resumes a reconcile interrupted after the Secret was written (operator restart)', async () => {
    await operator?.stop();
    operator = undefined;
    const bp = await create('team-b', 'gamma', {});
    // What a crash right after creating the Secret leaves: the Secret, no ACL user, no status.
    await kube.create('/api/v1/namespaces/team-b/secrets', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'gamma-bridge-redis', ownerReferences: [{ apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', name: 'gamma', uid: bp.metadata.uid, controller: true }] },
      stringData: { username: 'lhb-team-b.gamma', password: 'password-from-before-the-crash' },
    });
    operator = await run();
    await waitCondition('team-b', 'gamma', 'Ready', 'True');
    const client = await asUser('lhb-team-b.gamma', 'password-from-before-the-crash');
    assert.equal(await client.get('lhb:{team-b/gamma}:snap'), null);
    client.disconnect();
  });

  it('deletionPolicy Delete removes keys and ACL user; Retain keeps the data', async () => {
    // Redis ran without persistence and was restarted above: write beta's data again.
    await admin.set('lhb:{team-b/beta}:snap', 'secret-b');
    await create('team-b', 'doomed', { storage: { deletionPolicy: 'Delete' } });
    await waitCondition('team-b', 'doomed', 'Ready', 'True');
    for (let i = 0; i < 450; i++) await admin.set(`lhb:{team-b/doomed}:blob:${i}`, 'x');
    await admin.xadd('lhb:{team-b/doomed}:log', '1-0', 'e', '{}');
    await kube.delete(path('team-b', 'doomed'));
    await eventually('doomed gone', async () => (await kube.getOptional(path('team-b', 'doomed'))) === undefined, WAIT_MS, 100);
    assert.deepEqual(await admin.keys('lhb:{team-b/doomed}:*'), []);
    assert.equal(await admin.call('ACL', 'GETUSER', 'lhb-team-b.doomed'), null);
    assert.equal(await admin.get('lhb:{team-b/beta}:snap'), 'secret-b', "another project's keys are untouched");

    await kube.delete(path('team-b', 'beta'));
    await eventually('beta gone', async () => (await kube.getOptional(path('team-b', 'beta'))) === undefined, WAIT_MS, 100);
    assert.equal(await admin.get('lhb:{team-b/beta}:snap'), 'secret-b', 'Retain keeps the data');
    assert.equal(await admin.call('ACL', 'GETUSER', 'lhb-team-b.beta'), null, 'but nobody can log in as the project any more');
  });

  const projectUsers = async (prefix: string) => ((await admin.call('ACL', 'USERS')) as string[]).filter((u) => u.startsWith(prefix));

  it('leaves no ACL user behind when projects are deleted right after creation', async () => {
    // The race: a DELETE lands although the PATCH adding our finalizer has returned, so no
    // finalizer runs while the reconcile under way creates the user. About 1 cycle in 20.
    for (let i = 0; i < 60; i++) {
      await create('team-b', `blink-${i}`, {});
      if (i % 3 !== 0) await new Promise((resolve) => setTimeout(resolve, i % 3 === 1 ? 5 : 20));
      await kube.delete(path('team-b', `blink-${i}`));
    }
    await eventually('every blink project gone', async () => (await kube.get<{ items: BridgeProject[] }>(path('team-b'))).items.every((bp) => !bp.metadata.name.startsWith('blink-')), WAIT_MS, 100);
    await eventually('no ACL user of a deleted project', async () => {
      assert.deepEqual(await projectUsers('lhb-team-b.blink-'), []);
      return true;
    }, WAIT_MS, 100);
  });

  it('removes ACL users whose project no longer exists on relist, and no other user', async () => {
    await create('team-b', 'kept', {});
    await waitCondition('team-b', 'kept', 'Ready', 'True');
    // What the race above left behind before the fix, or a project deleted while the operator was down.
    for (const user of ['lhb-team-b.ghost', 'lhb-team-b.ghost.two', 'lhb-nodot', 'lhb-Team.Ghost', 'app-user']) await admin.call('ACL', 'SETUSER', user, 'on', '>pw');
    await eventually('orphaned project user removed', async () => (await admin.call('ACL', 'GETUSER', 'lhb-team-b.ghost')) === null, WAIT_MS, 100);
    for (const user of ['lhb-team-b.ghost.two', 'lhb-nodot', 'lhb-Team.Ghost', 'app-user']) assert.notEqual(await admin.call('ACL', 'GETUSER', user), null, `${user} is not a project's user`);
    assert.notEqual(await admin.call('ACL', 'GETUSER', 'lhb-team-b.kept'), null, 'a live project keeps its user');
  });

  it('a project deleted while Redis is down waits for cleanup, then goes', async () => {
    await create('team-b', 'patient', { storage: { deletionPolicy: 'Delete' } });
    await waitCondition('team-b', 'patient', 'Ready', 'True');
    await admin.set('lhb:{team-b/patient}:snap', 'x');
    await redis.kill();
    await kube.delete(path('team-b', 'patient'));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const stuck = await kube.getOptional<BridgeProject>(path('team-b', 'patient'));
    assert.ok(stuck?.metadata.deletionTimestamp, 'kept by the finalizer while its data cannot be removed');
    await redis.restart();
    admin.disconnect();
    admin = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    await eventually('patient gone', async () => (await kube.getOptional(path('team-b', 'patient'))) === undefined, WAIT_MS, 100);
    // The user came back from the ACL file on restart; the finalizer removed it before letting go.
    assert.equal(await admin.call('ACL', 'GETUSER', 'lhb-team-b.patient'), null);
  });
});
