import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStoreUrl, StoreUnavailableError } from '@lighthouse-bridge/core';
import { freePort } from '@lighthouse-bridge/test/ports';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '@lighthouse-bridge/test/redis';
import { decideAccess, redisConfigSource } from './access.js';

const project = { namespace: 'team', name: 'secret' };
const config = { access: { readWrite: ['writer', 'ops/*'], readOnly: ['*/auditor'], annotate: ['team/reviewer'] } };

describe('decideAccess', () => {
  const pod = (namespace: string, serviceAccount: string) => ({ namespace, serviceAccount });

  test('a bare NAME means the project namespace; wildcards match either part', () => {
    assert.deepEqual(decideAccess(project, config, pod('team', 'writer'), false, false), { allowed: true });
    assert.equal(decideAccess(project, config, pod('other', 'writer'), true, false).allowed, false);
    assert.deepEqual(decideAccess(project, config, pod('ops', 'deployer'), false, false), { allowed: true });
    assert.deepEqual(decideAccess(project, config, pod('anywhere', 'auditor'), true, false), { allowed: true });
  });

  test('read-only and annotate grants allow read-only mounts only', () => {
    assert.equal(decideAccess(project, config, pod('anywhere', 'auditor'), false, false).allowed, false);
    assert.deepEqual(decideAccess(project, config, pod('team', 'reviewer'), true, false), { allowed: true });
    assert.equal(decideAccess(project, config, pod('team', 'reviewer'), false, false).allowed, false);
  });

  test('no config: open unless required; config but unknown pod: refused', () => {
    assert.deepEqual(decideAccess(project, undefined, undefined, false, false), { allowed: true });
    assert.equal(decideAccess(project, undefined, pod('team', 'writer'), false, true).allowed, false);
    assert.equal(decideAccess(project, config, undefined, true, false).allowed, false);
  });
});

describe('redisConfigSource', () => {
  let redis: RedisServer;
  let cluster: RedisCluster;
  before(async () => {
    redis = await startRedis();
    cluster = await startRedisCluster(3);
  });
  after(async () => {
    await redis?.stop();
    await cluster?.stop();
  });

  test('reads the operator-written config from a single Redis and from a Redis Cluster', async () => {
    await redis.cli(['SET', 'lhb:{team/secret}:config', JSON.stringify(config)]);
    const single = parseStoreUrl(redis.url);
    assert.equal(single.kind, 'redis');
    if (single.kind !== 'redis') return;
    const source = redisConfigSource(single);
    try {
      assert.deepEqual(await source.get(project), config);
      assert.equal(await source.get({ namespace: 'team', name: 'none' }), undefined);
    } finally {
      await source.close();
    }

    const clustered = parseStoreUrl(cluster.url);
    if (clustered.kind !== 'redis') return assert.fail('cluster url');
    const clusterSource = redisConfigSource(clustered);
    try {
      const node = cluster.nodes[0];
      assert.ok(node);
      await node.cli(['-c', 'SET', 'lhb:{team/secret}:config', JSON.stringify(config)]);
      assert.deepEqual(await clusterSource.get(project), config);
    } finally {
      await clusterSource.close();
    }
  });

  test('an unreachable Redis fails with StoreUnavailableError instead of hanging', { timeout: 15_000 }, async () => {
    const url = parseStoreUrl(`redis://127.0.0.1:${await freePort()}`);
    if (url.kind !== 'redis') return assert.fail('redis url');
    const source = redisConfigSource(url);
    try {
      await assert.rejects(source.get(project), StoreUnavailableError);
    } finally {
      await source.close();
    }
  });
});
