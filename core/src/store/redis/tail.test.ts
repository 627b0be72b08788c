import { startRedis } from '@lighthouse-bridge/test/redis';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { projectKeyPrefix } from '../../redis/keys.js';
import type { ProjectId } from '../../events/projectId.js';
import { StoreUnavailableError } from '../eventStore.js';
import { parseStoreUrl } from '../open.js';
import { openRedisStore } from './redisStore.js';
import { eventually } from '@lighthouse-bridge/test/eventually';

describe('Redis tail and refused credentials', () => {
  it('reports a deleted ACL user to the subscriber instead of retrying for ever', async () => {
    const redis = await startRedis({ aclFile: true });
    const project: ProjectId = { namespace: 'tail-test', name: `p-${randomBytes(5).toString('hex')}` };
    const prefix = projectKeyPrefix(project);
    await redis.cli(['acl', 'setuser', 'tenant', 'on', '>s3cret', `~${prefix}*`, '+@all', '-@dangerous', '-@admin']);
    const url = parseStoreUrl(`redis://tenant:s3cret@127.0.0.1:${redis.port}`);
    assert.equal(url.kind, 'redis');
    const store = await openRedisStore(url);
    try {
      const errors: Error[] = [];
      const seen: number[] = [];
      const feed = store.subscribe(project, 0, (events) => seen.push(...events.map((e) => e.seq)), (error) => errors.push(error));
      await store.append(project, [{ type: 'AgentSessionStarted', actor: 'tail-test', data: { sessionId: 's1', agent: 'a' } }]);
      await eventually('the first event', () => seen.length === 1, 15_000);

      await redis.cli(['acl', 'deluser', 'tenant']);
      await redis.cli(['client', 'kill', 'user', 'tenant']);
      await eventually('onError after the user was deleted', () => errors.length > 0, 15_000);
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof StoreUnavailableError, String(errors[0]));
      assert.match(errors[0].message, /WRONGPASS/);
      await feed.close();

      // A subscription that starts after the user is gone fails the same way, on its first connect.
      const late: Error[] = [];
      const second = store.subscribe(project, 0, () => undefined, (error) => late.push(error));
      await eventually('onError of a subscription opened after the deletion', () => late.length > 0, 15_000);
      assert.match(late[0]!.message, /connect failed: WRONGPASS/);
      await second.close();
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});
