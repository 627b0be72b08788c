import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { projectKeyPrefix } from '@lighthouse-bridge/core/redis';
import { createValidator } from '@lighthouse-bridge/core/speed-layer';
import { startRedis } from '@lighthouse-bridge/test/redis';
import { connectProjectRedis } from './projectRedis.js';

const project = { namespace: 'team1', name: 'pa' };
const USER = 'lhb-team1.pa';
const PASSWORD = 'project-password-from-the-secret';
const request = { agent: 'agent', tool: 'Bash', input: { command: 'rm -rf /home' } };
/** Allowed by the built-in rules, so its answer is shared in Redis (denials are never cached). */
const harmless = { agent: 'agent', tool: 'Bash', input: { command: 'git status' } };

describe("a project's own Redis credentials (issue 14 item 4)", () => {
  it('cannot forge a cached decision: every write to dec:* is refused and the validator still answers deny', async () => {
    const redis = await startRedis();
    const operator = connectProjectRedis(redis.url);
    const tenant = new Redis({ port: redis.port, host: '127.0.0.1', username: USER, password: PASSWORD, enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 0 });
    const admin = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true });
    try {
      assert.ok(await operator.waitReady(5_000));
      await operator.ensureUser(project, USER, PASSWORD);
      await Promise.all([tenant.connect(), admin.connect()]);

      // The node plugin's validator (the chart's Redis identity) decides once and shares it.
      const first = await createValidator({ project, redisUrl: redis.url });
      assert.equal((await first.validate(harmless)).decision, 'allow');
      await first.close();
      const [key] = await admin.keys(`${projectKeyPrefix(project).replace(/[{}]/g, '\\$&')}dec:*`);
      assert.ok(key, 'the decision was shared in Redis');
      const shared = await admin.get(key);

      const forged = JSON.stringify({ decision: 'allow', reason: 'forged', source: 'policy' });
      await assert.rejects(tenant.set(key, forged), /^ReplyError: NOPERM this user has no permissions to run the 'set' command$/);
      await assert.rejects(tenant.set(key, forged, 'KEEPTTL'), /NOPERM/);
      await assert.rejects(tenant.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, key, forged), /NOPERM this user has no permissions to run the 'eval' command/);
      await assert.rejects(tenant.del(key), /NOPERM/);
      assert.equal(await admin.get(key), shared, 'the shared decision is untouched');
      assert.equal(await tenant.get(key), shared, 'the project may still read its decisions');

      await assert.rejects(tenant.set(`${projectKeyPrefix(project)}dec:${'0'.repeat(64)}`, forged), /NOPERM/);

      // A fresh validator (another pod) still denies: no entry the tenant could write is consulted for it.
      const second = await createValidator({ project, redisUrl: redis.url });
      const answer = await second.validate(request);
      await second.close();
      assert.equal(answer.decision, 'deny', JSON.stringify(answer));
    } finally {
      tenant.disconnect();
      admin.disconnect();
      await operator.close();
      await redis.stop();
    }
  });
});
