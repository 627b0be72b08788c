import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '@lighthouse-bridge/test/redis';
import type { NewEvent, RecordedEvent } from '../../events/events.js';
import type { ProjectId } from '../../events/projectId.js';
import { runEventStoreContract, type ContractFixture } from '../../testing/eventStoreContract.js';
import { StoreUnavailableError, type EventStore } from '../eventStore.js';
import { parseStoreUrl } from '../open.js';
import { openRedisStore } from './redisStore.js';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { contentHash } from '../../events/contentHash.js';

const MAX_VALUE_BYTES = 512 * 1024;

function open(url: string): Promise<EventStore> {
  const parsed = parseStoreUrl(url);
  assert.equal(parsed.kind, 'redis');
  return openRedisStore(parsed);
}

/** A fixture over a server shared by the whole describe block; each contract test uses new projects. */
function fixtureOn(url: () => string): () => Promise<ContractFixture> {
  return async () => {
    const opened: EventStore[] = [];
    const track = async (): Promise<EventStore> => {
      const store = await open(url());
      opened.push(store);
      return store;
    };
    const fixture: ContractFixture = {
      store: await track(),
      reopen: async () => {
        await fixture.store.close();
        fixture.store = await track();
        return fixture.store;
      },
      openSecond: track,
      teardown: async () => {
        await Promise.all(opened.map((s) => s.close()));
      },
    };
    return fixture;
  };
}

describe('Redis store on a single Redis', () => {
  let redis: RedisServer | undefined;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });
  runEventStoreContract('redis', fixtureOn(() => redis!.url));
});

describe('Redis store on a 3-primary Redis Cluster', () => {
  let cluster: RedisCluster | undefined;
  before(async () => {
    cluster = await startRedisCluster(3);
  });
  after(async () => {
    await cluster?.stop();
  });
  runEventStoreContract('redis cluster', fixtureOn(() => cluster!.url));

  it('puts all of a project\'s keys in one slot on one node', async () => {
    const store = await open(cluster!.url);
    try {
      const project = uniqueProject();
      await store.append(project, [event(1), event(2)]);
      await store.putBlob(project, randomBytes(600 * 1024));
      await store.putBlob(project, Buffer.from('small'));
      await store.saveSnapshot(project, { seq: 2, time: new Date().toISOString(), data: randomBytes(300 * 1024) });
      const pattern = `lhb:{${project.namespace}/${project.name}}:*`;
      const holders: Array<{ port: number; keys: string[] }> = [];
      for (const node of cluster!.nodes) {
        const keys = lines(await node.cli(['--scan', '--pattern', pattern]));
        if (keys.length > 0) holders.push({ port: node.port, keys });
      }
      assert.equal(holders.length, 1, `keys spread over nodes ${holders.map((h) => h.port).join(', ')}`);
      const keys = holders[0]!.keys;
      // log, snapshot index, one snapshot (+2 chunks), two blob headers (+3 chunks for the large one)
      assert.equal(keys.length, 10, `unexpected keys: ${keys.join(' ')}`);
      const slots = new Set<string>();
      for (const key of keys) slots.add((await cluster!.nodes[0]!.cli(['cluster', 'keyslot', key])).trim());
      assert.equal(slots.size, 1, `keys in slots ${[...slots].join(', ')}`);
    } finally {
      await store.close();
    }
  });
});

describe('Redis store failure behaviour and layout', () => {
  it('fails fast while the primary holding a project is down under Cluster, and recovers', async () => {
    const cluster = await startRedisCluster(3, { args: ['--appendonly', 'yes'] });
    const store = await open(cluster.url);
    const project = uniqueProject();
    const seen: number[] = [];
    const feed = store.subscribe(project, 0, (events) => seen.push(...events.map((e) => e.seq)));
    try {
      await store.append(project, [event(1)]);
      const log = `lhb:{${project.namespace}/${project.name}}:log`;
      let owner: RedisServer | undefined;
      for (const node of cluster.nodes) if ((await node.cli(['--scan', '--pattern', log])).includes(log)) owner = node;
      assert.ok(owner, 'no node holds the log');
      await owner.kill();
      const started = Date.now();
      await assert.rejects(store.append(project, [event(2)]), StoreUnavailableError);
      assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms to fail`);

      await owner.restart();
      await eventually('the restarted primary', async () => store.head(project).then((head) => head === 1, () => false), 10_000);
      await store.append(project, [event(2)], { expectedVersion: 1 });
      await eventually('the tail to resume after the restart', () => seen.length === 2, 10_000);
      assert.deepEqual(seen, [1, 2]);
    } finally {
      await feed.close();
      await store.close();
      await cluster.stop();
    }
  });

  it('fails fast with StoreUnavailableError while Redis is down, and recovers when it returns', async () => {
    const redis = await startRedis({ args: ['--appendonly', 'yes'] });
    const store = await open(redis.url);
    const other = await open(redis.url);
    const project = uniqueProject();
    const seen: RecordedEvent[] = [];
    const feed = other.subscribe(project, 0, (events) => seen.push(...events));
    try {
      await store.append(project, [event(1), event(2)]);
      await eventually('live events before the crash', () => seen.length === 2);
      await redis.kill();

      for (const attempt of [() => store.append(project, [event(3)]), () => store.head(project), () => store.ping(), () => store.read(project)]) {
        const started = Date.now();
        await assert.rejects(attempt(), StoreUnavailableError);
        assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms to fail`);
      }
      await assert.rejects(open(redis.url), StoreUnavailableError);

      await redis.restart();
      await eventually('reconnect after restart', async () => store.ping().then(() => true, () => false));
      // Acknowledged events survived the crash (AOF), and the sequence continues.
      assert.equal(await store.head(project), 2);
      const next = await store.append(project, [event(3)], { expectedVersion: 2 });
      assert.deepEqual(next.map((e) => e.seq), [3]);
      await eventually('the subscription to resume after the restart', () => seen.length === 3);
      assert.deepEqual(
        seen.map((e) => e.seq),
        [1, 2, 3],
      );
    } finally {
      await feed.close();
      await Promise.all([store.close(), other.close()]);
      await redis.stop();
    }
  });

  it('tails several projects from one store, a project joining a blocked tail without waiting', async () => {
    const redis = await startRedis();
    const store = await open(redis.url);
    const writer = await open(redis.url);
    const [a, b] = [uniqueProject(), uniqueProject()];
    const seen = { a: [] as number[], b: [] as number[] };
    const feeds = [store.subscribe(a, 0, (events) => seen.a.push(...events.map((e) => e.seq)))];
    try {
      await writer.append(a, [event(1)]);
      await eventually('project a', () => seen.a.length === 1);
      // The tail is now blocked in an XREAD naming only a's stream (for up to 5 s).
      await new Promise((resolve) => setTimeout(resolve, 200));
      feeds.push(store.subscribe(b, 0, (events) => seen.b.push(...events.map((e) => e.seq))));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = Date.now();
      await writer.append(b, [event(1)]);
      await eventually('project b', () => seen.b.length === 1, 2_000);
      assert.ok(Date.now() - started < 1_000, `b's first live event took ${Date.now() - started} ms`);
      await writer.append(a, [event(2)]);
      await writer.append(b, [event(2)]);
      await eventually('both projects', () => seen.a.length === 2 && seen.b.length === 2);
      assert.deepEqual(seen, { a: [1, 2], b: [1, 2] });
      // One blocking connection serves both, besides the two stores' command connections.
      const clients = lines(await redis.cli(['client', 'list'])).filter((l) => / cmd=xread /.test(l));
      assert.equal(clients.length, 1, clients.join('\n'));
    } finally {
      await Promise.all(feeds.map((f) => f.close()));
      await Promise.all([store.close(), writer.close()]);
      await redis.stop();
    }
  });

  it('reads a busy log a batch at a time: gathering for a moment after each read that brought events, losing none', async () => {
    const redis = await startRedis();
    const store = await open(redis.url);
    const writer = await open(redis.url);
    const project = uniqueProject();
    const seen: number[] = [];
    const gatheringAfterDelivery: boolean[] = [];
    const feed = store.subscribe(project, 0, (events) => {
      seen.push(...events.map((e) => e.seq));
      // Looked at once the tail's loop goes on from this delivery.
      queueMicrotask(() => gatheringAfterDelivery.push(feed.gathering === true));
    });
    try {
      // Past the subscription's first look at the backlog: from here on the tail's loop delivers.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(feed.gathering, false);
      for (let i = 1; i <= 50; i++) await writer.append(project, [event(i)]);
      await eventually('all 50 events', () => seen.length === 50);
      assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i + 1));
      assert.ok(gatheringAfterDelivery.length > 0 && gatheringAfterDelivery.every(Boolean), `gathering after each delivery: ${gatheringAfterDelivery.join(',')}`);
      // Idle again: blocked in XREAD, every new event reaches it at once.
      await eventually('the pause to end', () => feed.gathering === false, 1_000);
    } finally {
      await feed.close();
      await Promise.all([store.close(), writer.close()]);
      await redis.stop();
    }
  });

  it('chunks blobs so no value exceeds 512 KiB, and refuses a corrupted one', async () => {
    const redis = await startRedis();
    const store = await open(redis.url);
    try {
      const project = uniqueProject();
      // No byte is 'X', so writing one below always damages the chunk (a random byte was 'X' once in 256 runs).
      const content = Buffer.from(randomBytes(5 * 1024 * 1024 + 7).map((b) => (b === 0x58 ? 0x59 : b)));
      const hash = await store.putBlob(project, content);
      await store.saveSnapshot(project, { seq: 1, time: new Date().toISOString(), data: randomBytes(2 * 1024 * 1024) });
      const keys = lines(await redis.cli(['--scan', '--pattern', `lhb:{${project.namespace}/${project.name}}:*`]));
      assert.ok(keys.length > 20, `expected chunk keys, found ${keys.join(' ')}`);
      for (const key of keys) {
        const type = (await redis.cli(['type', key])).trim();
        if (type === 'string') {
          assert.ok(Number(await redis.cli(['strlen', key])) <= MAX_VALUE_BYTES, `${key} is too large`);
        } else if (type === 'hash') {
          for (const field of lines(await redis.cli(['hkeys', key]))) {
            assert.ok(Number(await redis.cli(['hstrlen', key, field])) <= MAX_VALUE_BYTES, `${key} ${field} is too large`);
          }
        } else {
          assert.equal(type, 'zset', `${key} has unexpected type ${type}`);
        }
      }
      assert.ok(content.equals((await store.getBlob(project, hash))!));

      // Flip one byte in the middle chunk: the read must fail, never return wrong content.
      const blobKey = `lhb:{${project.namespace}/${project.name}}:blob:${hash}`;
      await redis.cli(['setrange', `${blobKey}:10`, '100', 'X']);
      await assert.rejects(store.getBlob(project, hash), StoreUnavailableError);
      await redis.cli(['del', `${blobKey}:3`]);
      await assert.rejects(store.getBlob(project, hash), StoreUnavailableError);
    } finally {
      await store.close();
      await redis.stop();
    }
  });

  it('refuses an append whose blob could not be stored, and only that one; the blob is one HSET sent with the append', async () => {
    const redis = await startRedis();
    const store = await open(redis.url);
    try {
      const project = uniqueProject();
      const blocked = Buffer.from('a key of the wrong type sits where this blob goes');
      const blobKey = `lhb:{${project.namespace}/${project.name}}:blob:${contentHash(blocked)}`;
      // Whatever holds the tenant's credentials can write its keys: here a string where a blob's hash goes.
      await redis.cli(['set', blobKey, 'not a blob']);
      const ok = Buffer.from('stored');
      const [refused, accepted] = await Promise.allSettled([
        store.append(project, [event(1)], { blobs: [{ hash: contentHash(blocked), content: blocked }] }),
        store.append(project, [event(2)], { blobs: [{ hash: contentHash(ok), content: ok }] }),
      ]);
      assert.equal(refused.status, 'rejected');
      assert.ok(refused.reason instanceof StoreUnavailableError && /WRONGTYPE/.test(refused.reason.message), String(refused.reason));
      assert.equal(accepted.status, 'fulfilled');
      assert.deepEqual((await store.read(project)).map((e) => (e.data as { path: string }).path), ['f2.txt']);
      assert.ok(ok.equals((await store.getBlob(project, contentHash(ok)))!));

      // No EXISTS first: one HSET, sent with the script.
      await redis.cli(['config', 'resetstat']);
      await store.append(project, [event(3)], { blobs: [{ hash: contentHash(Buffer.from('one trip')), content: Buffer.from('one trip') }] });
      const stats = await redis.cli(['info', 'commandstats']);
      assert.match(stats, /cmdstat_hset:calls=1,/);
      assert.doesNotMatch(stats, /cmdstat_exists/);
    } finally {
      await store.close();
      await redis.stop();
    }
  });

  it('appends through a server that lost its scripts (a restart, a failover): the script is sent again and the blob stored', async () => {
    const redis = await startRedis();
    const store = await open(redis.url);
    try {
      const project = uniqueProject();
      await store.append(project, [event(1)]);
      await redis.cli(['script', 'flush']);
      const content = Buffer.from('written after SCRIPT FLUSH');
      const [second] = await store.append(project, [event(2)], { blobs: [{ hash: contentHash(content), content }] });
      assert.equal(second!.seq, 2);
      assert.ok(content.equals((await store.getBlob(project, contentHash(content)))!));
      assert.deepEqual((await store.read(project)).map((e) => e.seq), [1, 2]);
    } finally {
      await store.close();
      await redis.stop();
    }
  });

  it('keeps the documented stream layout, so redis-cli can read and write the log', async () => {
    const redis = await startRedis();
    const store = await open(redis.url);
    try {
      const project = uniqueProject();
      const log = `lhb:{${project.namespace}/${project.name}}:log`;
      const [first] = await store.append(project, [event(1)]);
      // `--no-raw` is not needed: piped redis-cli prints one value per line.
      const shown = lines(await redis.cli(['xrange', log, '-', '+']));
      assert.deepEqual(shown, ['1-0', 'type', 'FileWritten', 'actor', 'layout-test', 'ms', String(Date.parse(first!.time)), 'data', JSON.stringify(event(1).data)]);

      // An entry added by hand in that layout is an event like any other, and the sequence goes on.
      const data = JSON.stringify({ sessionId: 's1', agent: 'by-hand' });
      await redis.cli(['xadd', log, '2-0', 'type', 'AgentSessionStarted', 'actor', 'ops', 'ms', '1800000000000', 'data', data]);
      const [, byHand] = await store.read(project);
      assert.deepEqual(byHand, { seq: 2, time: '2027-01-15T08:00:00.000Z', type: 'AgentSessionStarted', actor: 'ops', data: { sessionId: 's1', agent: 'by-hand' } });
      const [third] = await store.append(project, [event(3)], { expectedVersion: 2 });
      assert.equal(third!.seq, 3);
      // Store time never goes back, even behind an entry stamped in the future.
      assert.equal(third!.time, '2027-01-15T08:00:00.000Z');
    } finally {
      await store.close();
      await redis.stop();
    }
  });

  it('connects as an ACL user from the URL, confined to its own project', async () => {
    const redis = await startRedis({ aclFile: true });
    const project = uniqueProject();
    const prefix = `lhb:{${project.namespace}/${project.name}}:`;
    await redis.cli(['acl', 'setuser', 'tenant', 'on', '>s3cret/:@', 'resetkeys', `~${prefix}*`, '+@all', '-@dangerous', '-@admin']);
    const url = `redis://tenant:${encodeURIComponent('s3cret/:@')}@127.0.0.1:${redis.port}`;
    const store = await open(url);
    try {
      assert.ok(!store.location.includes('s3cret'), 'credentials leaked into location');
      const seen: number[] = [];
      const feed = store.subscribe(project, 0, (events) => seen.push(...events.map((e) => e.seq)));
      await store.append(project, [event(1), event(2)]);
      const hash = await store.putBlob(project, Buffer.from('tenant data'));
      assert.equal((await store.getBlob(project, hash))?.toString(), 'tenant data');
      await eventually('the tail as an ACL user', () => seen.length === 2);
      await feed.close();

      await assert.rejects(store.append(uniqueProject(), [event(1)]), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError);
        assert.match(error.message, /NOPERM/);
        return true;
      });
      await assert.rejects(open(`redis://tenant:wrong@127.0.0.1:${redis.port}`), StoreUnavailableError);
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});

function uniqueProject(): ProjectId {
  return { namespace: 'redis-test', name: `p-${randomBytes(5).toString('hex')}` };
}

function event(i: number): NewEvent {
  const hash = createHash('sha256').update(String(i)).digest('hex');
  return { type: 'FileWritten', actor: 'layout-test', data: { path: `f${i}.txt`, hash, size: i, mode: 0o644, mtimeMs: 1_700_000_000_000 + i } };
}


function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}
