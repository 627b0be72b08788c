import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kubeToolsAvailable, startKube, type KubeEnv } from '@lighthouse-bridge/test/kube';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { resourcePath, type BridgeProject } from './bridgeProject.js';
import { connectKube, KubeApiError, loadKubeConfig, type KubeClient } from './kubeClient.js';
import type { RunningOperator } from './operator.js';
import { ensureNamespace, installBridgeProjectCrd, kubeFor, startTestOperator } from './testing/testEnv.js';

const skip = kubeToolsAvailable() ? false : 'kube-apiserver/etcd not built: run bash test/setup/tools/kube.sh';
const SA = '/api/v1/namespaces/default/serviceaccounts';

describe('operator credentials: a rotated service-account token file', { skip }, () => {
  let env: KubeEnv;
  let redis: RedisServer;
  let kube: KubeClient;
  let dir: { dir: string; remove: () => Promise<void> };
  let operator: RunningOperator | undefined;
  const logs: string[] = [];

  before(async () => {
    [env, redis, dir] = await Promise.all([startKube(), startRedis({ aclFile: true }), tempDir('lhb-token-')]);
    kube = await kubeFor(env.kubeconfig);
    await installBridgeProjectCrd(kube);
    await ensureNamespace(kube, 'team');
    await kube.create(SA, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'operator' } });
    await kube.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'operator-test' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: 'default' }],
    });
  });
  after(async () => {
    await operator?.stop();
    await Promise.all([env?.stop(), redis?.stop()]);
    await dir?.remove();
  });

  /** A token for the service account, valid until the Secret `holder` is deleted (as a pod-bound token dies with its pod). */
  const mintToken = async (holder: string): Promise<string> => {
    const secret = await kube.create<{ metadata: { uid: string } }>('/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: holder } });
    const review = await kube.create<{ status: { token: string } }>(`${SA}/operator/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: holder, uid: secret.metadata.uid } },
    });
    return review.status.token;
  };
  /** As the kubelet does: the new token appears under the same path at once (here by rename). */
  const placeToken = async (path: string, token: string): Promise<void> => {
    await writeFile(`${path}.new`, token);
    await rename(`${path}.new`, path);
  };
  const accepted = async (token: string): Promise<boolean> => {
    const file = join(dir.dir, `probe-${token.slice(-8)}`);
    await writeFile(file, token);
    const probe = await connectKube(loadKubeConfig(await writeInCluster(env, file, join(dir.dir, 'probe-kubeconfig'))));
    try {
      await probe.get('/api/v1/namespaces/default');
      return true;
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 401) return false;
      throw error;
    }
  };
  const create = (name: string) =>
    kube.create(resourcePath('team'), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name }, spec: {} });
  const ready = (name: string) =>
    eventually(`team/${name} Ready=True`, async () => {
      const bp = await kube.get<BridgeProject>(resourcePath('team', name));
      return bp.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    }, 20_000, 100);

  it('keeps reconciling after the token file is replaced and the old token revoked', async () => {
    const tokenFile = join(dir.dir, 'token');
    await placeToken(tokenFile, await mintToken('token-a'));
    const kubeconfig = await writeInCluster(env, tokenFile, join(dir.dir, 'kubeconfig'));
    operator = await startTestOperator(kubeconfig, redis.url, (level, message, fields) => logs.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`));
    await create('before');
    await ready('before');

    const oldToken = await readFile(tokenFile, 'utf8');
    await placeToken(tokenFile, await mintToken('token-b'));
    await kube.delete('/api/v1/namespaces/default/secrets/token-a');
    await eventually('the old token refused', async () => !(await accepted(oldToken)), 10_000, 100);

    await create('after');
    await ready('after').catch((error: Error) => assert.fail(`${error.message}\noperator log:\n${logs.slice(-10).join('\n')}`));
  });
});

/**
 * A kubeconfig whose user is what client-node builds in a pod (`loadFromCluster`): an auth
 * provider reading the projected token file, so the operator authenticates as it does in-cluster.
 */
async function writeInCluster(env: KubeEnv, tokenFile: string, path: string): Promise<string> {
  await writeFile(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: env.server, 'certificate-authority-data': Buffer.from(env.ca).toString('base64') } }],
      users: [{ name: 'sa', user: { 'auth-provider': { name: 'tokenFile', config: { tokenFile } } } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'sa' } }],
      'current-context': 'c',
    }),
  );
  return path;
}
