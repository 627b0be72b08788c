import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startRedis } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { clientOptions, createRedisClient, whenReady } from '@lighthouse-bridge/core/redis';
import { parseStoreUrl } from '@lighthouse-bridge/core';
import { CHART, helm, helmAvailable, RELEASE_NAMESPACE, render, renderAs, TEST_REDIS_URL, type Manifest } from './testing/helm.js';

const skip = helmAvailable ? false : 'helm not extracted: run bash test/setup/tools/helm.sh';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  image: string;
  args: string[];
  env?: EnvVar[];
  ports?: Array<{ name: string; containerPort: number }>;
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string } };
  securityContext?: { privileged?: boolean; runAsUser?: number; capabilities?: unknown };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  containers: Container[];
  volumes?: Array<{ name: string; secret?: { secretName: string }; emptyDir?: object }>;
  priorityClassName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  affinity?: { podAntiAffinity?: { preferredDuringSchedulingIgnoredDuringExecution?: Array<{ podAffinityTerm: { topologyKey: string } }> } };
}
type Workload = Manifest & { spec: { replicas?: number; updateStrategy?: unknown; volumeClaimTemplates?: Array<{ metadata: { name: string }; spec: { resources: { requests: { storage: string } } } }>; template: { spec: PodSpec } } };

const one = (all: Manifest[], kind: string, suffix = ''): Manifest => {
  const found = all.filter((m) => m.kind === kind && m.metadata.name.endsWith(suffix));
  assert.equal(found.length, 1, `one ${kind} named *${suffix}, got ${found.map((m) => m.metadata.name).join(', ')}`);
  return found[0] as Manifest;
};
const daemonSet = (all: Manifest[]) => one(all, 'DaemonSet', '-csi-node') as Workload;
const operator = (all: Manifest[]) => one(all, 'Deployment', '-operator') as Workload;
const container = (w: Workload, name: string): Container => {
  const c = w.spec.template.spec.containers.find((x) => x.name === name);
  assert.ok(c, `container ${name} in ${w.metadata.name}`);
  return c;
};

describe('chart values', { skip }, () => {
  it('passes helm lint with an external and with the bundled Redis', async () => {
    await helm(['lint', CHART, '--strict', '--set', `redis.url=${TEST_REDIS_URL}`]);
    await helm(['lint', CHART, '--strict', '--set', 'redis.bundled.enabled=true']);
  });

  it('refuses values the schema does not allow, naming the value', async () => {
    await assert.rejects(render('operator.replicas=two'), /operator\.replicas: Invalid type\. Expected: integer, given: string/);
    await assert.rejects(render('operator.replica=1'), /operator: Additional property replica is not allowed/);
    await assert.rejects(render('csi.updateStrategy.type=Recreate'), /csi\.updateStrategy\.type/);
    await assert.rejects(render('redis.url=http://redis:6379'), /redis\.url: Does not match pattern/);
    await assert.rejects(render('csi.healthPort=70000'), /csi\.healthPort: Must be less than or equal to 65535/);
  });

  it('every leaf of values.yaml is documented in the chart README', async () => {
    const values = parse(await readFile(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const schema = JSON.parse(await readFile(join(CHART, 'values.schema.json'), 'utf8')) as Schema;
    const readme = await readFile(join(CHART, 'README.md'), 'utf8');
    const leaves = valueLeaves(values, schema, []);
    assert.ok(leaves.length > 50, `found ${leaves.length} leaves`);
    const missing = leaves.filter((leaf) => !readme.includes(`| \`${leaf}\` |`));
    assert.deepEqual(missing, [], 'rows of the README values table');
  });

  it('runs the node plugin in node mode only, registering itself, with probes and no redundant capabilities', async () => {
    const ds = daemonSet(await render());
    const plugin = container(ds, 'plugin');
    assert.ok(!plugin.args.includes('all') && !plugin.args.some((a) => a.startsWith('--mode=')), plugin.args.join(' '));
    assert.deepEqual(plugin.args.slice(plugin.args.indexOf('--mode'), plugin.args.indexOf('--mode') + 2), ['--mode', 'node']);
    const flag = (name: string) => plugin.args[plugin.args.indexOf(name) + 1];
    assert.equal(flag('--registration-socket'), '/registration/bridge.lighthouse.dev-reg.sock');
    assert.equal(flag('--kubelet-registration-path'), '/var/lib/kubelet/plugins/bridge.lighthouse.dev/csi.sock');
    assert.ok(plugin.args.includes('--health-port=9808') && plugin.args.includes('--health-host=0.0.0.0'));
    assert.ok(plugin.args.includes('--require-access-config'));
    assert.ok(plugin.volumeMounts?.some((m) => m.name === 'registration-dir' && m.mountPath === '/registration'));
    assert.deepEqual(plugin.livenessProbe?.httpGet, { path: '/healthz', port: 'health' });
    assert.deepEqual(plugin.readinessProbe?.httpGet, { path: '/readyz', port: 'health' });
    assert.equal(plugin.ports?.find((p) => p.name === 'health')?.containerPort, 9808);
    assert.deepEqual(plugin.securityContext, { privileged: true, runAsUser: 0 });
    const pod = ds.spec.template.spec;
    assert.equal(pod.priorityClassName, 'system-node-critical');
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
    // The old plugin serves until the new one has taken its mounts over (ADR 0083): a surge, never a gap.
    assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
  });

  it('with csi.registrar.enabled, runs the upstream registrar and the plugin does not register itself', async () => {
    const ds = daemonSet(await render('csi.registrar.enabled=true'));
    assert.deepEqual(ds.spec.template.spec.containers.map((c) => c.name), ['node-driver-registrar', 'plugin']);
    const plugin = container(ds, 'plugin');
    assert.ok(!plugin.args.includes('--registration-socket') && !plugin.args.includes('--kubelet-registration-path'), plugin.args.join(' '));
    assert.ok(container(ds, 'node-driver-registrar').args.includes('--kubelet-registration-path=/var/lib/kubelet/plugins/bridge.lighthouse.dev/csi.sock'));
  });

  it('takes the update strategy, priority class, tolerations and node selector from values', async () => {
    const ds = daemonSet(
      await render('csi.updateStrategy.rollingUpdate.maxSurge=1', 'csi.updateStrategy.rollingUpdate.maxUnavailable=0', 'csi.priorityClassName=bridge-critical', 'csi.tolerations=null', 'csi.nodeSelector.pool=agents'),
    );
    assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    assert.equal(ds.spec.template.spec.priorityClassName, 'bridge-critical');
    assert.equal(ds.spec.template.spec.tolerations, undefined);
    assert.deepEqual(ds.spec.template.spec.nodeSelector, { 'kubernetes.io/os': 'linux', pool: 'agents' });
    assert.deepEqual(daemonSet(await render('csi.updateStrategy.type=OnDelete')).spec.updateStrategy, { type: 'OnDelete' });
    await assert.rejects(render('csi.healthPort=9091'), /csi\.healthPort and csi\.metricsPort must differ, both are 9091/);
  });

  it('refuses operator replicas > 1 without leader election, with the way out in the message', async () => {
    await assert.rejects(render('operator.leaderElection.enabled=false'), /operator\.replicas is 2 but operator\.leaderElection\.enabled is false: .*set operator\.replicas=1/);
    const single = await render('operator.leaderElection.enabled=false', 'operator.replicas=1');
    assert.ok(!container(operator(single), 'operator').args.includes('--leader-elect'));
    assert.deepEqual(single.filter((m) => m.kind === 'PodDisruptionBudget' || m.metadata.name.endsWith('-leader-election')), [], 'no PDB, no Lease RBAC for a single replica without election');
    assert.equal(operator(single).spec.template.spec.affinity, undefined);
  });

  it('gives a replicated operator a PodDisruptionBudget and prefers its replicas on different nodes', async () => {
    const all = await render();
    const pdb = one(all, 'PodDisruptionBudget', '-operator') as Manifest & { spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } } };
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.equal(pdb.spec.selector.matchLabels['app.kubernetes.io/component'], 'operator');
    const terms = operator(all).spec.template.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution;
    assert.deepEqual(terms?.map((t) => t.podAffinityTerm.topologyKey), ['kubernetes.io/hostname']);
    assert.deepEqual(operator(all).spec.template.spec.nodeSelector, { 'kubernetes.io/os': 'linux' });
    const own = operator(await render('operator.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool', 'operator.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists'));
    assert.equal(own.spec.template.spec.affinity?.podAntiAffinity, undefined, "the user's affinity replaces the default");
  });

  it('has no wildcard in any RBAC rule', async () => {
    for (const set of [[], ['operator.watchNamespace=team'], ['backup.enabled=true'], ['backup.enabled=true', 'operator.watchNamespace=team']]) {
      const roles = (await render(...set)).filter((m) => m.kind === 'Role' || m.kind === 'ClusterRole') as Array<Manifest & { rules: Array<Record<string, string[]>> }>;
      assert.ok(roles.length >= 2);
      for (const role of roles) for (const r of role.rules) for (const v of Object.values(r)) assert.ok(!v.includes('*'), `${role.metadata.name}: ${JSON.stringify(r)}`);
    }
  });

  it('with operator.watchNamespace, renders no ClusterRole at all: operator and backup get Roles in that namespace', async () => {
    const all = await render('operator.watchNamespace=team', 'backup.enabled=true');
    assert.deepEqual(all.filter((m) => m.kind === 'ClusterRole' || m.kind === 'ClusterRoleBinding').map((m) => m.metadata.name), []);
    const roles = all.filter((m) => m.kind === 'Role' || m.kind === 'RoleBinding').map((m) => `${m.kind} ${m.metadata.namespace ?? RELEASE_NAMESPACE}/${m.metadata.name}`);
    assert.deepEqual(roles.sort(), [
      'Role lighthouse-bridge/lhb-lighthouse-bridge-leader-election',
      'Role team/lhb-lighthouse-bridge-backup',
      'Role team/lhb-lighthouse-bridge-operator',
      'RoleBinding lighthouse-bridge/lhb-lighthouse-bridge-leader-election',
      'RoleBinding team/lhb-lighthouse-bridge-backup',
      'RoleBinding team/lhb-lighthouse-bridge-operator',
    ]);
  });

  it('refuses no Redis, or two, and a CA for a Redis that is not rediss://', async () => {
    await assert.rejects(renderAs('lhb', [], [], { redis: false }), /choose one Redis: redis\.url, redis\.existingSecret, or redis\.bundled\.enabled=true/);
    await assert.rejects(render('redis.bundled.enabled=true'), /choose one Redis/);
    await assert.rejects(render('redis.existingSecret=mine'), /choose one Redis/);
    await assert.rejects(render('redis.tls.caSecret=ca'), /redis\.tls\.caSecret is set but redis\.url is not rediss:\/\//);
    await assert.rejects(renderAs('lhb', [], ['redis.bundled.enabled=true', 'redis.tls.caSecret=ca'], { redis: false }), /redis\.tls\.caSecret is for an external rediss:\/\/ Redis/);
  });

  it('with redis.existingSecret, every component reads the URL from it and the chart makes no Redis Secret', async () => {
    const all = await renderAs('lhb', [], ['redis.existingSecret=mine', 'redis.existingSecretKey=address', 'backup.enabled=true'], { redis: false });
    assert.deepEqual(all.filter((m) => m.kind === 'Secret'), []);
    const refs = [container(operator(all), 'operator'), container(daemonSet(all), 'plugin')].map((c) => c.env?.find((e) => e.valueFrom?.secretKeyRef)?.valueFrom?.secretKeyRef);
    assert.deepEqual(refs, [{ name: 'mine', key: 'address' }, { name: 'mine', key: 'address' }]);
  });

  it('with redis.tls.caSecret, mounts the CA into the operator, node plugin and backup and names it in LHB_REDIS_CA_FILE', async () => {
    const all = await renderAs('lhb', [], ['redis.url=rediss://redis.example:6380', 'redis.tls.caSecret=redis-ca', 'redis.tls.caSecretKey=root.pem', 'backup.enabled=true'], { redis: false });
    const cron = one(all, 'CronJob') as Manifest & { spec: { jobTemplate: { spec: { template: { spec: PodSpec } } } } };
    const pods: Array<[PodSpec, string]> = [
      [operator(all).spec.template.spec, 'operator'],
      [daemonSet(all).spec.template.spec, 'plugin'],
      [cron.spec.jobTemplate.spec.template.spec, 'backup'],
    ];
    for (const [pod, name] of pods) {
      const c = pod.containers.find((x) => x.name === name);
      assert.equal(c?.env?.find((e) => e.name === 'LHB_REDIS_CA_FILE')?.value, '/etc/lighthouse-bridge/redis-ca/ca.crt', name);
      assert.ok(c?.volumeMounts?.some((m) => m.name === 'redis-ca' && m.mountPath === '/etc/lighthouse-bridge/redis-ca'), name);
      assert.deepEqual(pod.volumes?.find((v) => v.name === 'redis-ca'), { name: 'redis-ca', secret: { secretName: 'redis-ca', items: [{ key: 'root.pem', path: 'ca.crt' }] } }, name);
    }
    assert.equal(container(operator(await render()), 'operator').env?.some((e) => e.name === 'LHB_REDIS_CA_FILE'), false, 'no CA unless asked');
  });

  it('bundled Redis: a one-replica StatefulSet with AOF fsync always on a claim, and every component pointed at it', async () => {
    const all = await renderAs('lhb', [], ['redis.bundled.enabled=true', 'redis.bundled.persistence.size=2Gi'], { redis: false });
    const set = one(all, 'StatefulSet', '-redis') as Workload;
    assert.equal(set.spec.replicas, 1);
    const redis = container(set, 'redis');
    assert.equal(redis.image, 'docker.io/library/lighthouse-bridge-redis:0.1.0');
    const arg = (name: string) => redis.args[redis.args.indexOf(name) + 1];
    assert.equal(arg('--appendonly'), 'yes');
    assert.equal(arg('--appendfsync'), 'always');
    assert.equal(arg('--dir'), '/data');
    assert.deepEqual(set.spec.volumeClaimTemplates?.map((t) => [t.metadata.name, t.spec.resources.requests.storage]), [['data', '2Gi']]);
    const secret = one(all, 'Secret', '-redis') as Manifest & { stringData: { password: string; url: string; 'auth.conf': string } };
    assert.match(secret.stringData.password, /^[A-Za-z0-9]{40}$/);
    assert.ok(!redis.args.some((a) => a.includes(secret.stringData.password)), 'the password is not in the arguments');
    assert.equal(secret.stringData.url, `redis://default:${secret.stringData.password}@lhb-lighthouse-bridge-redis.${RELEASE_NAMESPACE}.svc:6379`);
    const service = one(all, 'Service', '-redis') as Manifest & { spec: { ports: Array<{ port: number }> } };
    assert.deepEqual(service.spec.ports.map((p) => p.port), [6379]);
    for (const c of [container(operator(all), 'operator'), container(daemonSet(all), 'plugin')]) {
      assert.deepEqual(c.env?.find((e) => e.valueFrom?.secretKeyRef)?.valueFrom?.secretKeyRef, { name: secret.metadata.name, key: 'url' });
    }
    const ephemeral = one(await renderAs('lhb', [], ['redis.bundled.enabled=true', 'redis.bundled.persistence.enabled=false'], { redis: false }), 'StatefulSet') as Workload;
    assert.equal(ephemeral.spec.volumeClaimTemplates, undefined);
    assert.deepEqual(ephemeral.spec.template.spec.volumes?.find((v) => v.name === 'data'), { name: 'data', emptyDir: {} });
  });

  it("bundled Redis: redis-server accepts the rendered config, and the URL's user may create ACL users with appendfsync always", async () => {
    const all = await renderAs('lhb', [], ['redis.bundled.enabled=true'], { redis: false });
    const secret = one(all, 'Secret', '-redis') as Manifest & { stringData: { url: string; 'auth.conf': string } };
    const args = container(one(all, 'StatefulSet', '-redis') as Workload, 'redis').args;
    assert.equal(args[0], '/etc/redis/auth.conf');
    const { dir, remove } = await tempDir('lhb-chart-redis-');
    const conf = join(dir, 'auth.conf');
    await writeFile(conf, secret.stringData['auth.conf']);
    // The rendered arguments, except where this test's server must listen and write.
    const rest = args.slice(1);
    const without = (list: string[], flag: string) => {
      const i = list.indexOf(flag);
      return i < 0 ? list : [...list.slice(0, i), ...list.slice(i + 2)];
    };
    const server = await startRedis({ configFile: conf, args: without(without(rest, '--port'), '--dir') });
    const url = parseStoreUrl(secret.stringData.url);
    assert.equal(url.kind, 'redis');
    const client = createRedisClient({ ...url, nodes: [{ host: server.host, port: server.port }] }, clientOptions.operator());
    try {
      assert.equal(await whenReady(client, 5_000), true, 'authenticated with the URL');
      assert.deepEqual(await client.call('CONFIG', 'GET', 'appendfsync'), ['appendfsync', 'always']);
      assert.deepEqual(await client.call('CONFIG', 'GET', 'appendonly'), ['appendonly', 'yes']);
      assert.equal(await client.call('ACL', 'SETUSER', 'lhb-team.demo', 'reset', 'on', '>pw', 'nocommands', '+get', '%R~lhb:{team/demo}:*'), 'OK');
      assert.match(await server.cli(['get', 'x']).catch((error: Error) => error.message), /NOAUTH/, 'nobody gets in without the password');
    } finally {
      client.disconnect();
      await server.stop();
      await remove();
    }
  });
});

type Schema = { type?: string; additionalProperties?: unknown; properties?: Record<string, Schema>; $ref?: string };

/**
 * Dotted paths of values.yaml's leaves: objects with a fixed set of keys in the schema are walked
 * into; everything else (scalars, lists, free-form maps like resources or nodeSelector) is a leaf.
 */
function valueLeaves(value: unknown, schema: Schema, path: string[]): string[] {
  const fixed = schema.$ref === undefined && schema.type === 'object' && schema.additionalProperties === false && schema.properties;
  if (!fixed || value === null || typeof value !== 'object' || Array.isArray(value)) return [path.join('.')];
  return Object.entries(value).flatMap(([key, v]) => {
    const sub = schema.properties?.[key];
    assert.ok(sub, `values.yaml's ${[...path, key].join('.')} is not in values.schema.json`);
    return valueLeaves(v, sub, [...path, key]);
  });
}
