import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { restoreJobName, withCredentials } from './restore.js';

describe('restore names and credentials', () => {
  const named = (name: string) => ({ apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name, namespace: 'team', uid: 'u', resourceVersion: '1' } });

  it("keeps the Job's name within the 63 characters of its pods' job-name label, unique per project", () => {
    assert.equal(restoreJobName(named('alpha')), 'alpha-bridge-restore');
    const long = 'a'.repeat(50);
    const a = restoreJobName(named(`${long}-one`));
    const b = restoreJobName(named(`${long}-two`));
    assert.ok(a.length <= 63 && b.length <= 63, `${a} ${b}`);
    assert.notEqual(a, b);
  });

  it("puts the restore user's credentials on the operator's hosts, replacing its own", () => {
    assert.equal(withCredentials('redis://redis.redis.svc:6379/2', 'lhb-t.a.restore', 'p/w@'), 'redis://lhb-t.a.restore:p%2Fw%40@redis.redis.svc:6379/2');
    assert.equal(withCredentials('rediss://admin:s3cr@t@r:6380', 'u', 'p'), 'rediss://u:p@r:6380');
    assert.equal(withCredentials('redis+cluster://admin:x@h1:7000,h2:7001', 'u', 'p'), 'redis+cluster://u:p@h1:7000,h2:7001');
  });
});
