import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { startKube, type KubeEnv } from '@lighthouse-bridge/test/kube';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { connectKube, loadKubeConfig, type KubeClient } from '../kubeClient.js';
import { startOperator, type Log, type RunningOperator } from '../operator.js';

/** Shared by the operator's tests: the repository's CRD file, applied to a real API server. */
export const CRD_FILE = fileURLToPath(new URL('../../../crds/bridgeprojects.bridge.lighthouse.dev.yaml', import.meta.url));

export async function kubeFor(kubeconfig: string): Promise<KubeClient> {
  return connectKube(loadKubeConfig(kubeconfig));
}

/** Creates (or updates) a CRD from a manifest and waits until the API serves it. */
export async function installCrd(kube: KubeClient, manifest: Record<string, unknown>): Promise<void> {
  const name = (manifest.metadata as { name: string }).name;
  await kube.apply(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`, manifest);
  await waitForCrd(kube, name);
}

/** Waits until the API server reports the CRD `name` Established. */
export async function waitForCrd(kube: KubeClient, name: string): Promise<void> {
  await eventually(`CRD ${name} established`, async () => {
    const crd = await kube.get<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
  }, 30_000, 100);
}

export async function installBridgeProjectCrd(kube: KubeClient): Promise<void> {
  await installCrd(kube, parse(await readFile(CRD_FILE, 'utf8')) as Record<string, unknown>);
}

export async function ensureNamespace(kube: KubeClient, name: string): Promise<void> {
  await kube.apply(`/api/v1/namespaces/${name}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

/** The image the test operator names in the Jobs it creates; nothing runs it (no kubelet). */
export const TEST_IMAGE = 'ghcr.io/lighthouse-bridge/lighthouse-bridge:test';

/** One operator, no leader election, with timings short enough for tests to wait on. */
export function startTestOperator(kubeconfig: string, redisUrl: string, log: Log): Promise<RunningOperator> {
  return startOperator({
    redisUrl,
    image: TEST_IMAGE,
    kubeconfig,
    leaderElect: false,
    leaseName: 'unused',
    operatorNamespace: 'default',
    leaseDurationMs: 15_000,
    relistAfterMs: 2_000,
    queue: { baseBackoffMs: 100, maxBackoffMs: 1_000 },
    log,
  });
}

/** A real API server with the CRD and `namespaces`, a real Redis with an ACL file, an admin client, and a test operator on both. */
export interface OperatorWorld {
  env: KubeEnv;
  kube: KubeClient;
  redis: RedisServer;
  admin: Redis;
  operator: RunningOperator;
  stop(): Promise<void>;
}

export async function startOperatorWorld(namespaces: string[], log: Log): Promise<OperatorWorld> {
  const [env, redis] = await Promise.all([startKube(), startRedis({ aclFile: true })]);
  const admin = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  const kube = await kubeFor(env.kubeconfig);
  await installBridgeProjectCrd(kube);
  await Promise.all(namespaces.map((ns) => ensureNamespace(kube, ns)));
  const operator = await startTestOperator(env.kubeconfig, redis.url, log);
  const stop = async (): Promise<void> => {
    await operator.stop();
    admin.disconnect();
    await Promise.all([env.stop(), redis.stop()]);
  };
  return { env, kube, redis, admin, operator, stop };
}
