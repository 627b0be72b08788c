import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cluster } from 'ioredis';
import { kubeToolsAvailable, startKube, type KubeEnv } from '@lighthouse-bridge/test/kube';
import { freePort } from '@lighthouse-bridge/test/ports';
import { startRedisCluster, type RedisCluster } from '@lighthouse-bridge/test/redis';
import { resourcePath, type BridgeProject } from './bridgeProject.js';
import type { KubeClient } from './kubeClient.js';
import { ensureNamespace, installBridgeProjectCrd, kubeFor } from './testing/testEnv.js';
import { eventually } from '@lighthouse-bridge/test/eventually';

const skip = kubeToolsAvailable() ? false : 'kube-apiserver/etcd not built: run bash test/setup/tools/kube.sh';
const CLI = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));
const LEASE_SECONDS = 3;

interface Lease {
  spec: { holderIdentity?: string | null; leaseTransitions?: number };
}

/**
 * Two operator processes (the real CLI) against one apiserver and a Redis Cluster: only the
 * Lease holder reconciles, a SIGKILLed leader is replaced within a lease duration, and SIGTERM
 * hands the Lease over at once.
 */
describe('operator replicas with leader election, on a Redis Cluster', { skip }, () => {
  let env: KubeEnv;
  let kube: KubeClient;
  let cluster: RedisCluster;
  const replicas = new Map<string, ChildProcess>();

  const startReplica = (identity: string, extra: string[] = []): ChildProcess => {
    const child = spawn(
      process.execPath,
      [CLI, 'operator', '--redis', cluster.url, '--leader-elect', '--lease-name', 'lhb-test', '--lease-namespace', 'default', '--lease-duration', String(LEASE_SECONDS), '--relist-seconds', '2', ...extra],
      { env: { ...process.env, KUBECONFIG: env.kubeconfig, POD_NAME: identity, LHB_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    replicas.set(identity, child);
    return child;
  };
  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const holder = async () => (await kube.getOptional<Lease>('/apis/coordination.k8s.io/v1/namespaces/default/leases/lhb-test'))?.spec.holderIdentity ?? '';
  const create = (name: string) =>
    kube.create<BridgeProject>(resourcePath('team'), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name }, spec: {} });
  const ready = (name: string, timeoutMs: number) =>
    eventually(`team/${name} Ready`, async () => {
      const bp = await kube.get<BridgeProject>(resourcePath('team', name));
      return bp.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    }, timeoutMs, 100);

  before(async () => {
    [env, cluster] = await Promise.all([startKube(), startRedisCluster(3)]);
    kube = await kubeFor(env.kubeconfig);
    await installBridgeProjectCrd(kube);
    await ensureNamespace(kube, 'team');
  });
  after(async () => {
    for (const child of replicas.values()) child.kill('SIGKILL');
    await Promise.all([...replicas.values()].map(exited));
    await Promise.all([env?.stop(), cluster?.stop()]);
  });

  it('applies the ACL user on every cluster node and the user works through the cluster', async () => {
    const metricsPort = await freePort();
    startReplica('replica-1', ['--metrics-port', String(metricsPort)]);
    await eventually('replica-1 leads', async () => (await holder()) === 'replica-1', 20_000, 100);
    startReplica('replica-2');
    await create('one');
    await ready('one', 20_000);
    for (const node of cluster.nodes) {
      assert.match(await node.cli(['ACL', 'GETUSER', 'lhb-team.one']), /lhb:\{team\/one\}:\*/, `ACL on node ${node.port}`);
    }
    const secret = await kube.get<{ data: Record<string, string> }>('/api/v1/namespaces/team/secrets/one-bridge-redis');
    const password = Buffer.from(secret.data.password ?? '', 'base64').toString('utf8');
    const client = new Cluster(
      cluster.nodes.map((n) => ({ host: n.host, port: n.port })),
      { redisOptions: { username: 'lhb-team.one', password }, clusterRetryStrategy: () => null },
    );
    client.on('error', () => undefined);
    try {
      // Read-only on its own keys (ADR 0062): writes go through the node plugin's identity.
      assert.equal(await client.get('lhb:{team/one}:snap'), null);
      await assert.rejects(client.set('lhb:{team/one}:snap', 'x'), /NOPERM/);
      await assert.rejects(client.get('lhb:{team/two}:snap'), /NOPERM/);
    } finally {
      client.disconnect();
    }
    assert.equal(await holder(), 'replica-1', 'the standby never took the Lease while the leader renewed it');
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^lighthouse_bridge_operator_leader 1$/m);
    assert.match(metrics, /^lighthouse_bridge_operator_reconcile_duration_seconds_count\{result="ok"\} [1-9]/m);
  });

  it('a SIGKILLed leader is replaced within one lease duration', async () => {
    const leader = replicas.get('replica-1') as ChildProcess;
    const killedAt = Date.now();
    leader.kill('SIGKILL');
    await exited(leader);
    await eventually('replica-2 leads', async () => (await holder()) === 'replica-2', (LEASE_SECONDS + 3) * 1000, 100);
    const failoverMs = Date.now() - killedAt;
    // Lease duration plus up to two retry periods of the candidate (observe, then take over).
    assert.ok(failoverMs < LEASE_SECONDS * 1000 + 2000, `failover took ${failoverMs} ms`);
    await create('two');
    await ready('two', 20_000);
  });

  it('SIGTERM releases the Lease so a successor takes over without waiting for expiry', async () => {
    startReplica('replica-3');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const leader = replicas.get('replica-2') as ChildProcess;
    const termAt = Date.now();
    leader.kill('SIGTERM');
    await exited(leader);
    assert.equal(leader.exitCode, 0);
    await eventually('replica-3 leads', async () => (await holder()) === 'replica-3', 10_000, 100);
    const handoverMs = Date.now() - termAt;
    assert.ok(handoverMs < LEASE_SECONDS * 1000, `handover took ${handoverMs} ms, not quicker than expiry`);
    await create('three');
    await ready('three', 20_000);
  });

  it('a leader whose Lease is taken stops reconciling and exits non-zero', async () => {
    const leader = replicas.get('replica-3') as ChildProcess;
    const lease = await kube.get<Lease & { metadata: Record<string, unknown> }>('/apis/coordination.k8s.io/v1/namespaces/default/leases/lhb-test');
    const stolenAt = Date.now();
    await kube.replace('/apis/coordination.k8s.io/v1/namespaces/default/leases/lhb-test', {
      ...lease,
      spec: { ...lease.spec, holderIdentity: 'intruder', leaseDurationSeconds: 600, renewTime: new Date().toISOString().replace('Z', '000Z') },
    });
    await Promise.race([exited(leader), new Promise((_, reject) => setTimeout(() => reject(new Error('leader kept running')), LEASE_SECONDS * 1000))]);
    assert.equal(leader.exitCode, 1);
    assert.ok(Date.now() - stolenAt < LEASE_SECONDS * 1000);
    assert.equal(await holder(), 'intruder', 'it did not fight back for the Lease');
  });
});
