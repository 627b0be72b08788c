import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStore, type EventStore } from '@lighthouse-bridge/core';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';

/** The BUILT CLI, run as users run it. */
const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function cli(args: string[], options: { input?: Uint8Array; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, LHB_STORE: '', LHB_ACTOR: '', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lighthouse-bridge ${args.join(' ')} did not finish within ${options.timeoutMs ?? 20_000} ms`));
    }, options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.end(options.input ?? Buffer.alloc(0));
  });
}

async function ok(args: string[], options: Parameters<typeof cli>[1] = {}): Promise<Buffer> {
  const result = await cli(args, options);
  assert.equal(result.code, 0, `${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

interface LogLine {
  seq: number;
  type: string;
  time: string;
  actor: string;
  path?: string;
  data: Record<string, unknown>;
}
const parseLog = (out: Buffer): LogLine[] =>
  out
    .toString()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogLine);

interface Backend {
  name: string;
  start(): Promise<string>;
  stop(): Promise<void>;
}

let dir: { dir: string; remove: () => Promise<void> } | undefined;
let redis: RedisServer | undefined;
const backends: Backend[] = [
  {
    name: 'embedded',
    start: async () => {
      dir = await tempDir('lhb-cli-');
      return `file://${dir.dir}/store`;
    },
    stop: async () => dir?.remove(),
  },
  {
    name: 'redis',
    start: async () => {
      redis = await startRedis();
      return redis.url;
    },
    stop: async () => redis?.stop(),
  },
];

for (const backend of backends) {
  describe(`CLI store commands on the ${backend.name} store`, () => {
    let url = '';
    before(async () => {
      url = await backend.start();
    });
    after(() => backend.stop());

    it('put/cat/ls/log/mv/rm round trip with binary content and time travel', async () => {
      const s = ['--store', url];
      const v1 = Buffer.from([0, 0xff, 0x10, 0x0a, 0x00, 0xc3, 0x28, 0x7f]);
      // Missing parents are created by put: src, src/lib, then the file.
      assert.equal((await ok(['put', 'demo', 'src/lib/data.bin', ...s, '--actor', 'alice'], { input: v1 })).toString(), '3\n');
      assert.deepEqual(await ok(['cat', 'demo', 'src/lib/data.bin', ...s]), v1);
      assert.equal((await ok(['put', 'demo', 'src/lib/data.bin', ...s], { input: Buffer.from('version two'), env: { LHB_ACTOR: 'bob' } })).toString(), '4\n');
      assert.equal((await ok(['cat', 'default/demo', 'src/lib/data.bin', ...s])).toString(), 'version two');
      assert.deepEqual(await ok(['cat', 'demo', 'src/lib/data.bin', '--at', '3', ...s]), v1);

      const log = parseLog(await ok(['log', 'demo', '--json', ...s]));
      assert.deepEqual(
        log.map((e) => [e.seq, e.type, e.actor, e.path]),
        [
          [1, 'DirectoryCreated', 'alice', 'src'],
          [2, 'DirectoryCreated', 'alice', 'src/lib'],
          [3, 'FileWritten', 'alice', 'src/lib/data.bin'],
          [4, 'FileWritten', 'bob', 'src/lib/data.bin'],
        ],
      );
      assert.equal(log[2]?.data['size'], 8);
      assert.ok(log.every((e) => !Number.isNaN(Date.parse(e.time))));
      // By instant: the time of event 3 names the state after event 3 (unless 4 shares its millisecond).
      const t3 = log[2]?.time ?? '';
      if (t3 !== log[3]?.time) assert.deepEqual(await ok(['cat', 'demo', 'src/lib/data.bin', '--at', t3, ...s]), v1);
      const before1 = new Date(Date.parse(log[0]?.time ?? '') - 1).toISOString();
      const early = await cli(['cat', 'demo', 'src/lib/data.bin', '--at', before1, ...s]);
      assert.equal(early.code, 1, 'nothing existed before the first event');
      assert.match(early.stderr, /ENOENT/);

      assert.equal((await ok(['ls', 'demo', ...s])).toString(), 'src/\n');
      assert.equal((await ok(['ls', 'demo', 'src', '--at', '1', ...s])).toString(), '');
      const listing = JSON.parse((await ok(['ls', 'demo', 'src/lib', '--json', ...s])).toString()) as Array<Record<string, unknown>>;
      assert.deepEqual(listing.map((e) => [e['name'], e['kind'], e['size']]), [['data.bin', 'file', 11]]);

      await ok(['mv', 'demo', 'src', 'moved', ...s]);
      assert.equal((await ok(['cat', 'demo', 'moved/lib/data.bin', ...s])).toString(), 'version two');
      await ok(['mkdir', 'demo', 'a/b/c', '-p', ...s]);
      await ok(['mkdir', 'demo', 'a/b', '-p', ...s]);
      await ok(['rm', 'demo', 'a/b/c', ...s]);
      await ok(['rm', 'demo', 'moved/lib/data.bin', ...s]);
      assert.equal((await ok(['ls', 'demo', ...s])).toString(), 'a/\nmoved/\n');
      const text = (await ok(['log', 'demo', '--from', '5', ...s])).toString().trim().split('\n');
      assert.deepEqual(
        text.map((l) => l.split('\t').slice(3).join(' ')),
        ['PathMoved src -> moved', 'DirectoryCreated a', 'DirectoryCreated a/b', 'DirectoryCreated a/b/c', 'DirectoryRemoved a/b/c', 'PathDeleted moved/lib/data.bin'],
      );
    });

    it('refusals exit 1 with the errno on stderr and write nothing', async () => {
      const s = ['--store', url];
      await ok(['put', 'refuse', 'dir/file.txt', ...s], { input: Buffer.from('x') });
      const refusals: string[][] = [
        ['rm', 'refuse', 'nope'],
        ['rm', 'refuse', 'dir'],
        ['mkdir', 'refuse', 'dir'],
        ['mkdir', 'refuse', 'x/y'],
        ['mv', 'refuse', 'dir', 'dir/inside'],
        ['mv', 'refuse', 'missing', 'there'],
        ['put', 'refuse', 'dir/file.txt/under'],
        ['put', 'refuse', '../escape'],
        ['put', 'refuse', `${'n'.repeat(256)}`],
        ['cat', 'refuse', 'dir'],
        ['cat', 'refuse', 'dir/file.txt', '--at', '99'],
      ];
      for (const args of refusals) {
        const result = await cli([...args, ...s], { input: Buffer.from('y') });
        assert.equal(result.code, 1, `${args.join(' ')} should be refused: ${result.stderr}`);
        assert.match(result.stderr, /E[A-Z]+: /, args.join(' '));
        assert.equal(result.stdout.length, 0);
      }
      assert.deepEqual(parseLog(await ok(['log', 'refuse', '--json', ...s])).map((e) => e.seq), [1, 2]);
    });

    it('usage errors exit 2', async () => {
      const s = ['--store', url];
      const usage: string[][] = [
        ['cat', 'Bad_Project', 'f', ...s],
        ['cat', 'a/b/c', 'f', ...s],
        ['cat', 'demo', 'f', '--at', 'yesterday', ...s],
        ['cat', 'demo', 'f', '--at', '2026-11-26T10:00:00', ...s],
        ['cat', 'demo', ...s],
        ['ls', 'demo', 'a', 'b', ...s],
        ['log', 'demo', '--from', 'x', ...s],
        ['put', 'demo', 'f', '--bogus', ...s],
        ['put', 'demo', 'f', '--mode', '999', ...s],
        ['ls', 'demo', '--store', 'ftp://host/x'],
        ['ls', 'demo', '--store', 'redis://127.0.0.1:99999'],
        ['ls', 'demo', '--store', 'redis://h1:1,h2:2'],
        ['ls', 'demo', '--store', 'file://'],
      ];
      for (const args of usage) {
        const result = await cli(args);
        assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, /usage: lighthouse-bridge/);
      }
    });
  });
}

describe('CLI store reachability', () => {
  it('an unreachable Redis exits 3, for reads and writes', async () => {
    for (const args of [['ls', 'demo'], ['put', 'demo', 'f']]) {
      const result = await cli([...args, '--store', 'redis://127.0.0.1:1'], { input: Buffer.from('x') });
      assert.equal(result.code, 3, result.stderr);
      assert.match(result.stderr, /store unavailable/);
    }
  });

  describe('embedded store held by another writer (a running mount)', () => {
    let tmp: { dir: string; remove: () => Promise<void> };
    let holder: EventStore;
    let url = '';
    before(async () => {
      tmp = await tempDir('lhb-cli-lock-');
      url = `file://${tmp.dir}`;
      await ok(['put', 'busy', 'f.txt', '--store', url], { input: Buffer.from('first') });
      // This test process now plays the mount: it holds the project's writer lock.
      holder = await openStore(url);
      await holder.append({ namespace: 'default', name: 'busy' }, [{ type: 'DirectoryCreated', data: { path: 'held', mode: 0o755, mtimeMs: 0 }, actor: 'mount' }]);
    });
    after(async () => {
      await holder?.close();
      await tmp?.remove();
    });

    it('writers exit 3 naming the holder; cat, ls and log still work read-only; --follow sees its writes', async () => {
      const put = await cli(['put', 'busy', 'g.txt', '--store', url], { input: Buffer.from('nope') });
      assert.equal(put.code, 3, put.stderr);
      assert.match(put.stderr, new RegExp(`pid ${process.pid}`));
      assert.equal((await ok(['cat', 'busy', 'f.txt', '--store', url])).toString(), 'first');
      assert.equal((await ok(['ls', 'busy', '--store', url])).toString(), 'f.txt\nheld/\n');

      const follower = spawn(process.execPath, [MAIN, 'log', 'busy', '--follow', '--json', '--from', '2', '--store', url], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        let out = '';
        follower.stdout.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise<number | null>((resolve) => follower.on('close', resolve));
        await new Promise((r) => setTimeout(r, 300));
        await holder.append({ namespace: 'default', name: 'busy' }, [{ type: 'DirectoryCreated', data: { path: 'live', mode: 0o755, mtimeMs: 0 }, actor: 'mount' }]);
        const deadline = Date.now() + 10_000;
        while (!out.includes('"live"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(parseLog(Buffer.from(out)).map((e) => [e.seq, e.path]), [[2, 'held'], [3, 'live']]);
        follower.kill('SIGTERM');
        assert.equal(await exited, 0);
      } finally {
        follower.kill('SIGKILL');
      }
    });
  });
});
