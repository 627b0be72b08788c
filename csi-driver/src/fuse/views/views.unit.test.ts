/**
 * The views and the dispatcher called directly, without FUSE: a workspace on the embedded store in a
 * temp dir, no mount, no Redis. What a mount answers is covered through /dev/fuse in bridgeFs.test.ts;
 * these pin each view's part of the tree in milliseconds.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, ProjectWorkspace, type EventStore } from '@lighthouse-bridge/core';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { BridgeFs } from '../bridgeFs.js';
import { E, toErrno } from '../errno.js';
import { WriteBudget } from '../writeBudget.js';

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;

interface Fixture {
  fs: BridgeFs;
  budget: WriteBudget;
  store: EventStore;
  close(): Promise<void>;
}

let seq = 0;

async function fixture(options: { readOnly?: boolean; validator?: { validate(r: unknown): Promise<unknown> } } = {}): Promise<Fixture> {
  const tmp = await tempDir('lhb-views-');
  const store = await openStore(`file://${tmp.dir}`);
  const workspace = await ProjectWorkspace.open({ store, project: { namespace: 'default', name: `views-${++seq}` }, actor: 'unit' });
  const budget = new WriteBudget(1024 * 1024, () => {});
  const fs = new BridgeFs({ workspace, readOnly: options.readOnly ?? false, mountpoint: '/nowhere', validator: options.validator, writeBudget: budget });
  return {
    fs,
    budget,
    store,
    close: async () => {
      fs.close();
      await workspace.close();
      await store.close();
      await tmp.remove();
    },
  };
}

/** The errno FUSE would answer for `work` (0 when it succeeds). */
async function errno(work: () => unknown): Promise<number> {
  try {
    await work();
    return 0;
  } catch (error) {
    return toErrno(error, (e) => assert.fail(`unexpected error: ${String(e)}`));
  }
}

async function writeFile(fs: BridgeFs, fusePath: string, text: string): Promise<void> {
  const { fd } = fs.create(fusePath, 0o644);
  fs.write(fd, Buffer.from(text), Buffer.byteLength(text), 0);
  await fs.flush(fd);
  await fs.release(fd);
}

async function readAll(fs: BridgeFs, fusePath: string): Promise<string> {
  const { fd } = await fs.open(fusePath, O_RDONLY);
  const buf = Buffer.alloc(64 * 1024);
  const n = await fs.read(fd, buf, buf.length, 0);
  await fs.release(fd);
  return buf.subarray(0, n).toString('utf8');
}

describe('fuse views (unit, no FUSE)', () => {
  let f: Fixture;
  before(async () => {
    f = await fixture();
  });
  after(async () => f.close());

  it('root lists every view; anything else at the top is ENOENT', async () => {
    assert.deepEqual(f.fs.readdir('/'), ['current', 'history', 'shadows', 'context', 'streams', '.bridge']);
    assert.equal(await errno(() => f.fs.getattr('/nope')), E.ENOENT);
    assert.equal(await errno(() => f.fs.open('/streams/nope', O_WRONLY)), E.ENOENT);
  });

  it('current: a created file is listed while open, recorded as one event on close, and its buffer given back', async () => {
    const head = f.fs.workspace.head;
    const { fd } = f.fs.create('/current/a.txt', 0o644);
    assert.ok((f.fs.readdir('/current') as string[]).includes('a.txt'));
    f.fs.write(fd, Buffer.from('hello'), 5, 0);
    f.fs.write(fd, Buffer.from(' world'), 6, 5);
    assert.equal((f.fs.getattr('/current/a.txt') as { size: number }).size, 11);
    await f.fs.flush(fd);
    await f.fs.release(fd);
    assert.equal(f.fs.workspace.head, head + 1);
    assert.equal(f.budget.usedBytes, 0);
    assert.equal(await readAll(f.fs, '/current/a.txt'), 'hello world');
  });

  it('tells the kernel what it may cache and where close has nothing to record', async () => {
    const head = f.fs.workspace.head;
    const opened = async (fusePath: string, flags: number) => {
      const { fd, cache, flushes } = await f.fs.open(fusePath, flags);
      await f.fs.release(fd);
      return { cache, flushes };
    };
    // history never changes: kept across opens.
    assert.deepEqual(await opened(`/history/@${head}/a.txt`, O_RDONLY), { cache: 'keep', flushes: false });
    await writeFile(f.fs, '/current/cached.txt', 'cached');
    // current/: kept only while the content is what the last reader's open served, and nobody
    // opened it for writing, truncated, moved or removed it through this mount since.
    assert.deepEqual(await opened('/current/cached.txt', O_RDONLY), { cache: 'page', flushes: false });
    assert.deepEqual(await opened('/current/cached.txt', O_RDONLY), { cache: 'keep', flushes: false });
    assert.deepEqual(await opened('/current/cached.txt', O_WRONLY), { cache: 'page', flushes: true });
    assert.equal((await opened('/current/cached.txt', O_RDONLY)).cache, 'page', 'a writer\'s open forgets what the kernel holds');
    assert.equal((await opened('/current/cached.txt', O_RDONLY)).cache, 'keep');
    await writeFile(f.fs, '/current/cached.txt', 'changed');
    assert.equal((await opened('/current/cached.txt', O_RDONLY)).cache, 'page', 'new content is read again');
    await f.fs.rename('/current/cached.txt', '/current/moved.txt');
    await f.fs.rename('/current/moved.txt', '/current/cached.txt');
    assert.equal((await opened('/current/cached.txt', O_RDONLY)).cache, 'page', 'a rename forgets both names');
    await f.fs.unlink('/current/cached.txt');
    // Generated per open or per read, with size 0 in stat: every read must reach the mount.
    for (const generated of ['/history/log', '/streams/events', '/.bridge/status', '/shadows/a.txt.json']) {
      assert.equal((await opened(generated, O_RDONLY)).cache, 'direct', generated);
    }
    assert.deepEqual(await opened('/.bridge/validate', O_RDWR), { cache: 'direct', flushes: false });
  });

  it('current: a handle opened for reading refuses writes with EBADF', async () => {
    const { fd } = await f.fs.open('/current/a.txt', O_RDONLY);
    assert.equal(await errno(() => f.fs.write(fd, Buffer.from('x'), 1, 0)), E.EBADF);
    assert.equal(await errno(() => f.fs.ftruncate(fd, 0)), E.EBADF);
    await f.fs.release(fd);
  });

  it('history: lists the log and every @seq, answers a loaded view synchronously, refuses writes', async () => {
    const head = f.fs.workspace.head;
    const names = (await f.fs.readdir('/history')) as string[];
    assert.deepEqual(names, ['log', ...Array.from({ length: head }, (_, i) => `@${i + 1}`)]);
    await f.fs.getattr(`/history/@${head}/a.txt`);
    // Restored once, then answered from the workspace's view without a promise hop.
    assert.equal(f.fs.getattr(`/history/@${head}/a.txt`) instanceof Promise, false);
    assert.equal(await readAll(f.fs, `/history/@${head}/a.txt`), 'hello world');
    assert.equal(await errno(() => f.fs.open(`/history/@${head}/a.txt`, O_WRONLY)), E.EROFS);
    assert.equal(await errno(() => f.fs.getattr('/history/2999-01-01T00:00:00Z')), E.ENOENT);
    assert.equal(await errno(() => f.fs.getattr(`/history/@${head + 1}`)), E.ENOENT);
    const log = (await readAll(f.fs, '/history/log')).trim().split('\n');
    assert.equal(log.length, head);
  });

  it('shadows: a JSON annotation written and closed is recorded and read back; bad JSON is EINVAL', async () => {
    assert.deepEqual(f.fs.readdir('/shadows'), ['a.txt.json']);
    const body = '{"text":"looks fine","line":1}';
    const { fd } = await f.fs.open('/shadows/a.txt.json', O_WRONLY);
    f.fs.write(fd, Buffer.from(body), body.length, 0);
    assert.ok(f.budget.usedBytes > 0, 'the shadow request is held against the write budget');
    await f.fs.flush(fd);
    await f.fs.release(fd);
    assert.equal(f.budget.usedBytes, 0);
    const notes = JSON.parse(await readAll(f.fs, '/shadows/a.txt.json')) as { text: string }[];
    assert.deepEqual(notes.map((n) => n.text), ['looks fine']);

    const { fd: bad } = await f.fs.open('/shadows/a.txt.json', O_WRONLY);
    f.fs.write(bad, Buffer.from('not json'), 8, 0);
    assert.equal(await errno(() => f.fs.flush(bad)), E.EINVAL);
    await f.fs.release(bad);
    assert.equal(await errno(() => f.fs.create('/shadows/missing.txt.json', 0o644)), E.ENOENT);
    assert.equal(await errno(() => f.fs.getattr('/shadows/missing.txt.json')), E.ENOENT);
  });

  it('context: empty without packages; an unknown package is ENOENT', async () => {
    assert.deepEqual(f.fs.readdir('/context'), []);
    assert.equal(await errno(() => f.fs.getattr('/context/nope')), E.ENOENT);
  });

  it('context: a package\'s tree by path, each directory listing its names', async () => {
    for (const dir of ['pkg', 'pkg/a', 'pkg/a/deep', 'pkg/a.d']) await f.fs.mkdir(`/current/${dir}`, 0o755);
    for (const path of ['pkg/a/one.ts', 'pkg/a/deep/two.ts', 'pkg/b.ts', 'pkg/a.d/three.ts']) await writeFile(f.fs, `/current/${path}`, path);
    await f.fs.workspace.execute({ type: 'CreateContextPackage', name: 'tree', paths: ['pkg'] });
    assert.deepEqual((await f.fs.readdir('/context/tree')).sort(), ['manifest.json', 'pkg']);
    assert.deepEqual((await f.fs.readdir('/context/tree/pkg')).sort(), ['a', 'a.d', 'b.ts']);
    assert.deepEqual((await f.fs.readdir('/context/tree/pkg/a')).sort(), ['deep', 'one.ts']);
    assert.equal((f.fs.getattr('/context/tree/pkg/a/deep') as { mode: number }).mode & 0o170000, 0o040000);
    assert.equal((f.fs.getattr('/context/tree/pkg/a/deep/two.ts') as { size: number }).size, 'pkg/a/deep/two.ts'.length);
    assert.equal(await readAll(f.fs, '/context/tree/pkg/a.d/three.ts'), 'pkg/a.d/three.ts');
    assert.equal(await errno(() => f.fs.getattr('/context/tree/pkg/a/missing')), E.ENOENT);
    assert.equal(await errno(() => f.fs.getattr('/context/tree/pk')), E.ENOENT);
    // What a listing may show of a name is what a stat shows (no view here loads anything).
    assert.deepEqual(f.fs.getattrAtHand('/context/tree/pkg/b.ts'), f.fs.getattr('/context/tree/pkg/b.ts'));
  });

  it('history: a listing has nothing at hand for a past view not restored, and what getattr gives once it is', async () => {
    await writeFile(f.fs, '/current/past.txt', 'then');
    await writeFile(f.fs, '/current/past.txt', 'now');
    const seq = f.fs.workspace.head - 1;
    assert.equal(f.fs.getattrAtHand(`/history/@${seq}`), undefined);
    assert.equal(f.fs.getattrAtHand(`/history/@${seq}/past.txt`), undefined);
    assert.equal(f.fs.workspace.readyStateAt(seq), undefined, 'asking restored nothing');
    const restored = await f.fs.getattr(`/history/@${seq}/past.txt`);
    assert.equal(restored.size, 4);
    assert.deepEqual(f.fs.getattrAtHand(`/history/@${seq}/past.txt`), restored);
    assert.equal(await errno(() => f.fs.getattrAtHand(`/history/@${seq}/nothing-here`)), E.ENOENT);
  });

  it('streams: a reader gets each new event as a JSON line', async () => {
    const { fd } = await f.fs.open('/streams/events', O_RDONLY);
    const buf = Buffer.alloc(64 * 1024);
    const reading = f.fs.read(fd, buf, buf.length, 0);
    await writeFile(f.fs, '/current/b.txt', 'b');
    const n = await reading;
    const event = JSON.parse(buf.subarray(0, n).toString('utf8').trim().split('\n')[0]!) as { seq: number };
    assert.equal(event.seq, f.fs.workspace.head);
    await f.fs.release(fd);
  });

  it('.bridge: status counts open handles; validate answers each line, without a validator with an error', async () => {
    const { fd: held } = await f.fs.open('/current/a.txt', O_RDONLY);
    const status = JSON.parse(await readAll(f.fs, '/.bridge/status')) as { head: number; mount: { openHandles: number }; validator: string };
    // The status handle itself is counted once it is open, after its document was rendered.
    assert.equal(status.mount.openHandles, 1);
    assert.equal(status.head, f.fs.workspace.head);
    assert.equal(status.validator, 'none');
    await f.fs.release(held);

    const { fd } = await f.fs.open('/.bridge/validate', O_RDWR);
    f.fs.write(fd, Buffer.from('{}\n'), 3, 0);
    const buf = Buffer.alloc(4096);
    const n = await f.fs.read(fd, buf, buf.length, 0);
    assert.match(buf.subarray(0, n).toString(), /no validator is configured/);
    await f.fs.release(fd);
  });
});

describe('fuse views on a read-only mount (unit)', () => {
  it('refuses changes with EROFS but still validates, one answer per request line', async () => {
    const f = await fixture({ readOnly: true, validator: { validate: async (r) => ({ echo: r }) } });
    try {
      assert.equal(await errno(() => f.fs.create('/current/x', 0o644)), E.EROFS);
      assert.equal(await errno(() => f.fs.mkdir('/current/d', 0o755)), E.EROFS);
      assert.equal(await errno(() => f.fs.open('/shadows', O_WRONLY)), E.EROFS);
      const { fd } = await f.fs.open('/.bridge/validate', O_RDWR);
      f.fs.write(fd, Buffer.from('1\n2\n'), 4, 0);
      const buf = Buffer.alloc(4096);
      const n = await f.fs.read(fd, buf, buf.length, 0);
      assert.deepEqual(buf.subarray(0, n).toString().trim().split('\n'), ['{"echo":"1"}', '{"echo":"2"}']);
      await f.fs.release(fd);
    } finally {
      await f.close();
    }
  });
});
