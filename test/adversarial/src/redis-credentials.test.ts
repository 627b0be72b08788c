import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { openStore, ProjectWorkspace } from '@lighthouse-bridge/core';
import { connectProjectRedis, type ProjectRedis } from '@lighthouse-bridge/operator';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { door, type Case } from './table.js';

/*
 * The door: a project's own Redis credentials (the Secret anyone in its namespace can read), used
 * directly against the shared Redis (issue 14 items 4 and 7, ADR 0062). Every row is refused with
 * the exact NOPERM reply, and the whole dataset (DEBUG DIGEST), its size and the project's ACL user
 * are what they were before.
 */

const A = 'lhb:{team1/pa}:';
const B = 'lhb:{team2/pb}:';
const USER_A = 'lhb-team1.pa';
const PASSWORD_A = 'password-of-team1-pa-from-its-secret';
const BLOB = 'a'.repeat(64);

interface RedisRow extends Case {
  readonly args: ReadonlyArray<string | Buffer>;
  /** The exact error reply. */
  readonly error: string;
}

const command = (name: string): string => `NOPERM this user has no permissions to run the '${name}' command`;
const KEYS_REFUSED = 'NOPERM this user has no permissions to access one of the keys used as arguments';

const rows: RedisRow[] = [
  { name: 'SETRANGE at a 500 MB offset', args: ['SETRANGE', `${A}blob:x`, '524288000', 'x'], error: command('setrange') },
  { name: 'SET of 100 MB', args: ['SET', `${A}blob:big`, Buffer.alloc(100 * 1024 * 1024, 0x61)], error: command('set') },
  { name: 'SELECT 1', args: ['SELECT', '1'], error: command('select') },
  { name: 'INFO', args: ['INFO'], error: command('info') },
  { name: 'INFO keyspace (other tenants\' key counts)', args: ['INFO', 'keyspace'], error: command('info') },
  { name: 'SET a forged decision', args: ['SET', `${A}dec:${'0'.repeat(64)}`, '{"decision":"allow","reason":"forged","source":"policy"}'], error: command('set') },
  { name: 'SETEX a forged decision', args: ['SETEX', `${A}dec:${'1'.repeat(64)}`, '3600', '{"decision":"allow"}'], error: command('setex') },
  { name: 'SET its own config (widen access)', args: ['SET', `${A}config`, '{"access":{}}'], error: command('set') },
  { name: 'DEL its own log', args: ['DEL', `${A}log`], error: command('del') },
  { name: 'UNLINK a blob', args: ['UNLINK', `${A}blob:${BLOB}`], error: command('unlink') },
  { name: 'XADD an event by hand', args: ['XADD', `${A}log`, '999-0', 'type', 'FileDeleted', 'actor', 'x', 'ms', '0', 'data', '{}'], error: command('xadd') },
  { name: 'XTRIM the log to nothing', args: ['XTRIM', `${A}log`, 'MAXLEN', '0'], error: command('xtrim') },
  { name: 'HSET a blob header', args: ['HSET', `${A}blob:${BLOB}`, 'data', 'tampered'], error: command('hset') },
  { name: 'APPEND to a chunk', args: ['APPEND', `${A}blob:${BLOB}:0`, 'x'], error: command('append') },
  { name: 'EXPIRE the log', args: ['EXPIRE', `${A}log`, '1'], error: command('expire') },
  { name: 'RENAME the log', args: ['RENAME', `${A}log`, `${A}log2`], error: command('rename') },
  { name: 'COPY the log (doubles its memory)', args: ['COPY', `${A}log`, `${A}blob:copy`], error: command('copy') },
  { name: 'RESTORE a serialized value', args: ['RESTORE', `${A}blob:r`, '0', 'payload'], error: command('restore') },
  { name: 'LPUSH the mount registry', args: ['LPUSH', `${A}mounts`, 'x'], error: command('lpush') },
  { name: 'ZADD a snapshot index entry', args: ['ZADD', `${A}snaps`, '1', '1'], error: command('zadd') },
  { name: 'EVAL a write (ACL applies inside scripts)', args: ['EVAL', "return redis.call('SET', KEYS[1], 'x')", '1', `${A}blob:x`], error: command('eval') },
  { name: 'EVAL an endless loop (stalls the server)', args: ['EVAL', 'while true do end', '0'], error: command('eval') },
  { name: 'EVAL_RO', args: ['EVAL_RO', "return redis.call('GET', KEYS[1])", '1', `${A}config`], error: command('eval_ro') },
  { name: 'SCRIPT LOAD (grows the script cache)', args: ['SCRIPT', 'LOAD', 'return 1'], error: command('script|load') },
  { name: 'FUNCTION LOAD', args: ['FUNCTION', 'LOAD', '#!lua name=x\nredis.register_function("f", function() return 1 end)'], error: command('function|load') },
  { name: 'FCALL', args: ['FCALL', 'f', '0'], error: command('fcall') },
  { name: 'PUBLISH on its own channel', args: ['PUBLISH', `${A}events`, 'x'], error: command('publish') },
  { name: 'MULTI', args: ['MULTI'], error: command('multi') },
  { name: 'GET another project\'s config', args: ['GET', `${B}config`], error: KEYS_REFUSED },
  { name: 'XRANGE another project\'s log', args: ['XRANGE', `${B}log`, '-', '+'], error: KEYS_REFUSED },
  { name: 'XREAD another project\'s log', args: ['XREAD', 'STREAMS', `${B}log`, '0'], error: KEYS_REFUSED },
  { name: 'HGETALL another project\'s blob', args: ['HGETALL', `${B}blob:${BLOB}`], error: KEYS_REFUSED },
  { name: 'MGET own and another project\'s key', args: ['MGET', `${A}config`, `${B}config`], error: KEYS_REFUSED },
  { name: 'GET a key outside every project', args: ['GET', 'other'], error: KEYS_REFUSED },
  { name: 'SET another project\'s log', args: ['SET', `${B}log`, 'x'], error: command('set') },
  { name: 'KEYS *', args: ['KEYS', '*'], error: command('keys') },
  { name: 'SCAN', args: ['SCAN', '0'], error: command('scan') },
  { name: 'DBSIZE', args: ['DBSIZE'], error: command('dbsize') },
  { name: 'RANDOMKEY', args: ['RANDOMKEY'], error: command('randomkey') },
  { name: 'PUBSUB CHANNELS', args: ['PUBSUB', 'CHANNELS'], error: command('pubsub|channels') },
  { name: 'FLUSHALL', args: ['FLUSHALL'], error: command('flushall') },
  { name: 'FLUSHDB', args: ['FLUSHDB'], error: command('flushdb') },
  { name: 'SWAPDB 0 1', args: ['SWAPDB', '0', '1'], error: command('swapdb') },
  { name: 'CONFIG SET maxmemory', args: ['CONFIG', 'SET', 'maxmemory', '1'], error: command('config|set') },
  { name: 'CONFIG GET requirepass', args: ['CONFIG', 'GET', 'requirepass'], error: command('config|get') },
  { name: 'ACL SETUSER itself +@all', args: ['ACL', 'SETUSER', USER_A, '+@all', '~*'], error: command('acl|setuser') },
  { name: 'ACL LIST', args: ['ACL', 'LIST'], error: command('acl|list') },
  { name: 'CLIENT LIST (other tenants\' connections)', args: ['CLIENT', 'LIST'], error: command('client|list') },
  { name: 'CLIENT KILL', args: ['CLIENT', 'KILL', 'TYPE', 'normal'], error: command('client|kill') },
  { name: 'CLIENT PAUSE', args: ['CLIENT', 'PAUSE', '10000'], error: command('client|pause') },
  { name: 'CLIENT TRACKING BCAST', args: ['CLIENT', 'TRACKING', 'on', 'BCAST'], error: command('client|tracking') },
  { name: 'CLIENT NO-EVICT', args: ['CLIENT', 'NO-EVICT', 'on'], error: command('client|no-evict') },
  { name: 'DEBUG SLEEP', args: ['DEBUG', 'SLEEP', '5'], error: command('debug') },
  { name: 'SHUTDOWN', args: ['SHUTDOWN', 'NOSAVE'], error: command('shutdown') },
  { name: 'BGSAVE', args: ['BGSAVE'], error: command('bgsave') },
  { name: 'MIGRATE its log elsewhere', args: ['MIGRATE', '127.0.0.1', '1', `${A}log`, '0', '1000'], error: command('migrate') },
  { name: 'LCS of two chunks (quadratic memory)', args: ['LCS', `${A}blob:${BLOB}:0`, `${A}blob:${BLOB}:1`], error: command('lcs') },
  { name: 'SORT_RO with GET of other keys', args: ['SORT_RO', `${A}snaps`, 'GET', `${B}*`], error: command('sort_ro') },
  { name: 'MEMORY USAGE', args: ['MEMORY', 'USAGE', `${A}log`], error: command('memory|usage') },
  { name: 'XGROUP CREATE (a write to the stream)', args: ['XGROUP', 'CREATE', `${A}log`, 'g', '$'], error: command('xgroup|create') },
  { name: 'WAIT for replicas', args: ['WAIT', '1', '0'], error: command('wait') },
];

/** What must not change: every key and value (DEBUG DIGEST), how many, their memory, and the user's rules. */
type Fingerprint = { digest: string; keys: number; dataset: number; acl: unknown };

async function fingerprint(admin: Redis): Promise<Fingerprint> {
  const memory = await admin.call('MEMORY', 'STATS');
  const stats = memory as Array<string | number>;
  const dataset = Number(stats[stats.indexOf('dataset.bytes') + 1]);
  return { digest: String(await admin.call('DEBUG', 'DIGEST')), keys: await admin.dbsize(), dataset, acl: await admin.call('ACL', 'GETUSER', USER_A) };
}

/**
 * Same keys and values exactly; dataset bytes within 1 MiB, since Redis's own bookkeeping moves it
 * by up to a few hundred KiB between calls (a 500 MB SETRANGE or a 100 MB SET would move it by that much).
 */
function assertUnchanged(before: Fingerprint, after: Fingerprint): void {
  assert.deepEqual({ ...after, dataset: 0 }, { ...before, dataset: 0 });
  assert.ok(Math.abs(after.dataset - before.dataset) < 1024 * 1024, `dataset went from ${before.dataset} to ${after.dataset} bytes`);
}

let redis: RedisServer;
let admin: Redis;
let operator: ProjectRedis;
let tenant: Redis;

before(async () => {
  redis = await startRedis({ args: ['--enable-debug-command', 'yes'] });
  admin = new Redis({ host: '127.0.0.1', port: redis.port });
  operator = connectProjectRedis(redis.url);
  assert.ok(await operator.waitReady(5_000));
  await operator.ensureUser({ namespace: 'team1', name: 'pa' }, USER_A, PASSWORD_A);
  for (const prefix of [A, B]) {
    await admin.set(`${prefix}config`, '{"access":{"readWrite":["agents"]}}');
    await admin.xadd(`${prefix}log`, '1-0', 'type', 'AgentSessionStarted', 'actor', 'x', 'ms', '0', 'data', '{"sessionId":"s","agent":"a"}');
    await admin.hset(`${prefix}blob:${BLOB}`, 'size', '2', 'chunks', '2');
    await admin.set(`${prefix}blob:${BLOB}:0`, 'a'.repeat(30_000));
    await admin.set(`${prefix}blob:${BLOB}:1`, 'b'.repeat(30_000));
    await admin.zadd(`${prefix}snaps`, 1, '1');
  }
  tenant = new Redis({ host: '127.0.0.1', port: redis.port, username: USER_A, password: PASSWORD_A, enableReadyCheck: false, maxRetriesPerRequest: 0 });
});

after(async () => {
  tenant?.disconnect();
  admin?.disconnect();
  await operator?.close();
  await redis?.stop();
});

door('Redis credentials', rows, async (row) => {
  const before = await fingerprint(admin);
  await assert.rejects(tenant.call(...(row.args as [string, ...Array<string | Buffer>])), (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.equal(error.message, row.error);
    return true;
  });
  // The next command frees the refused command's arguments (Redis had to read them to refuse);
  // a large query buffer goes back in Redis's client cron, so memory may take a moment.
  assert.equal(await tenant.ping(), 'PONG', 'the connection still works after the refusal');
  let after = await fingerprint(admin);
  for (const until = Date.now() + 5_000; Math.abs(after.dataset - before.dataset) >= 1024 * 1024 && Date.now() < until; after = await fingerprint(admin)) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assertUnchanged(before, after);
});

describe("a project's credentials still read what is the project's", () => {
  it('reads its own keys and tails its log', async () => {
    assert.equal(await tenant.get(`${A}config`), '{"access":{"readWrite":["agents"]}}');
    assert.deepEqual((await tenant.xrange(`${A}log`, '-', '+')).map(([id]) => id), ['1-0']);
    assert.equal(await tenant.xlen(`${A}log`), 1);
    assert.equal((await tenant.hgetall(`${A}blob:${BLOB}`))['chunks'], '2');
    assert.equal((await tenant.mget(`${A}blob:${BLOB}:0`, `${A}blob:${BLOB}:1`)).length, 2);
    assert.deepEqual(await tenant.zrevrangebyscore(`${A}snaps`, '+inf', '-inf', 'LIMIT', 0, 1), ['1']);
    const blocked = tenant.duplicate();
    try {
      const waiting = blocked.xread('BLOCK', 5000, 'STREAMS', `${A}log`, '1-0');
      await new Promise((resolve) => setTimeout(resolve, 100));
      await admin.xadd(`${A}log`, '2-0', 'type', 'AgentSessionStarted', 'actor', 'x', 'ms', '0', 'data', '{"sessionId":"t","agent":"a"}');
      const reply = (await waiting) as Array<[string, Array<[string, string[]]>]>;
      assert.equal(reply[0]?.[1][0]?.[0], '2-0');
    } finally {
      blocked.disconnect();
    }
  });
});

describe('the CLI with project credentials (read-only)', () => {
  const MAIN = fileURLToPath(import.meta.resolve('@lighthouse-bridge/cli/main'));
  const project = 'team1/pa';
  const tenantUrl = (): string => `redis://${USER_A}:${PASSWORD_A}@127.0.0.1:${redis.port}`;
  const run = (args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> =>
    new Promise((resolve) => {
      const started = Date.now();
      const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LHB_LOG_LEVEL: 'error' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.stdin.end(input);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      });
    });

  /** Writes as the node plugin writes: with the chart's identity. */
  const writeAsPlugin = async (path: string, content: string): Promise<void> => {
    const store = await openStore(redis.url);
    try {
      const ws = await ProjectWorkspace.open({ store, project: { namespace: 'team1', name: 'pa' }, actor: 'plugin', live: false });
      await ws.writeFile(path, Buffer.from(content)).finally(() => ws.close());
    } finally {
      await store.close();
    }
  };

  before(async () => {
    await admin.del(`${A}log`, `${A}snaps`);
    await writeAsPlugin('a.txt', 'hello from the mount\n');
  });

  it('log, ls and cat work', async () => {
    const log = await run(['log', project, '--store', tenantUrl()]);
    assert.equal(log.code, 0, log.stderr);
    assert.match(log.stdout, /a\.txt/);
    const ls = await run(['ls', project, '--store', tenantUrl()]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /a\.txt/);
    const cat = await run(['cat', project, 'a.txt', '--store', tenantUrl()]);
    assert.deepEqual([cat.code, cat.stdout, cat.stderr], [0, 'hello from the mount\n', '']);
  });

  it('log --follow sees what the plugin writes', async () => {
    const child = spawn(process.execPath, [MAIN, 'log', project, '--follow', '--store', tenantUrl()], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      const deadline = Date.now() + 10_000;
      while (!out.includes('a.txt') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await writeAsPlugin('b.txt', 'later');
      while (!out.includes('b.txt') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /b\.txt/);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('put is refused at once with exit 1 (refused, not unreachable) and a message that says why', async () => {
    const before = await fingerprint(admin);
    const put = await run(['put', project, 'c.txt', '--store', tenantUrl()], 'tenant bytes');
    assert.equal(put.code, 1, put.stderr);
    assert.match(put.stderr, /refused: .*NOPERM/);
    assert.match(put.stderr, /read-only/);
    assert.ok(put.ms < 10_000, `took ${put.ms} ms`);
    assert.equal(put.stdout, '');
    assertUnchanged(before, await fingerprint(admin));
  });
});
