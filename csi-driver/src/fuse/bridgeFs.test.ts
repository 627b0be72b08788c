/**
 * The filesystem through a real FUSE mount (/dev/fuse) on a real embedded store. The mount is served
 * by this process, so every access here is async (fs/promises, child processes): a synchronous call
 * would block the thread that answers it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, chmod, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, rmdir, stat, statfs, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { openStore, type Command, type EventStore, type ProjectWorkspace, type RecordedEvent } from '@lighthouse-bridge/core';
import { fuseOpDuration } from '@lighthouse-bridge/core/observability';
import { MAX_REQUEST_BYTES } from '@lighthouse-bridge/core/speed-layer';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { mountProject, type MountedProject, type SyncMode } from '../mount/mountProject.js';

const run = promisify(execFile);
const PROJECT = { namespace: 'default', name: 'fs-test' };
const MAX_FILE = 256 * 1024;

interface Fixture {
  root: string;
  mnt: string;
  store: EventStore;
  mounted: MountedProject;
  cleanup(): Promise<void>;
}

interface FixtureOptions {
  readOnly?: boolean;
  validator?: { validate(r: unknown): Promise<unknown> };
  storeDir?: string;
  mnt?: string;
  sync?: SyncMode;
  /** Awaited before each append of the mount goes to the (real) store, with the types of its events. */
  beforeAppend?: (types: string[]) => Promise<unknown>;
}

async function mountFixture(options: FixtureOptions = {}): Promise<Fixture> {
  const tmp = await tempDir('lhb-fuse-');
  const storeDir = options.storeDir ?? join(tmp.dir, 'store');
  const mnt = options.mnt ?? join(tmp.dir, 'mnt');
  const store = await openStore(`file://${storeDir}`);
  let mounted: MountedProject;
  try {
    const { beforeAppend } = options;
    const served = !beforeAppend
      ? store
      : (Object.create(store, {
          append: { value: (...args: Parameters<EventStore['append']>) => beforeAppend(args[1].map((e) => e.type)).then(() => store.append(...args)) },
        }) as EventStore);
    mounted = await mountProject({
      store: served,
      project: PROJECT,
      mountpoint: mnt,
      actor: 'test',
      limits: { maxFileBytes: MAX_FILE },
      readOnly: options.readOnly ?? false,
      ...(options.validator ? { validator: options.validator } : {}),
      ...(options.sync ? { sync: options.sync } : {}),
    });
  } catch (error) {
    await store.close();
    await tmp.remove();
    throw error;
  }
  const fixture: Fixture = {
    root: tmp.dir,
    mnt,
    store,
    mounted,
    cleanup: async () => {
      // The fields, not the locals: a test may have remounted.
      await fixture.mounted.unmount();
      await fixture.store.close();
      await tmp.remove();
    },
  };
  return fixture;
}

const COUNTED_OPS = ['open', 'read', 'flush', 'getattr', 'lookup', 'readdirplus'] as const;

/** How many operations of each kind the mounts of PROJECT answered in JavaScript so far. */
async function opCounts(): Promise<Record<(typeof COUNTED_OPS)[number], number>> {
  const counts = { open: 0, read: 0, flush: 0, getattr: 0, lookup: 0, readdirplus: 0 };
  for (const v of (await fuseOpDuration.get()).values) {
    const op = COUNTED_OPS.find((o) => o === v.labels['op']);
    if (op && v.metricName?.endsWith('_count') && v.labels['project'] === PROJECT.name) counts[op] += v.value;
  }
  return counts;
}

async function events(store: EventStore, from: number): Promise<RecordedEvent[]> {
  return store.read(PROJECT, { from });
}

describe('FUSE filesystem (embedded store)', { timeout: 90_000 }, () => {
  let f: Fixture;
  let cur: string;
  before(async () => {
    f = await mountFixture();
    cur = join(f.mnt, 'current');
  });
  after(async () => {
    await f?.cleanup();
  });

  it('shows the layout at the root', async () => {
    assert.deepEqual((await readdir(f.mnt)).sort(), ['.bridge', 'context', 'current', 'history', 'shadows', 'streams']);
    assert.deepEqual((await readdir(join(f.mnt, '.bridge'))).sort(), ['status', 'validate']);
    assert.ok((await stat(join(f.mnt, 'streams', 'events'))).isFile(), 'streams/events is a regular file, never a FIFO');
  });

  it('records one event per close, however many writes came before', async () => {
    const head = f.mounted.workspace.head;
    const fh = await open(join(cur, 'many.txt'), 'w');
    for (let i = 0; i < 50; i++) await fh.write(`line ${i}\n`);
    assert.equal(f.mounted.workspace.head, head, 'nothing recorded before close');
    await fh.close();
    const written = await events(f.store, head + 1);
    assert.equal(written.length, 1);
    assert.equal(written[0]?.type, 'FileWritten');
    const expected = Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join('');
    assert.equal(await readFile(join(cur, 'many.txt'), 'utf8'), expected);
    assert.equal((await stat(join(cur, 'many.txt'))).size, Buffer.byteLength(expected));

    // An overwrite by one open is one event. The shell's redirect closes a duplicate before writing:
    // that close makes the emptied file durable (ADR 0041), so it is one more event.
    const before = f.mounted.workspace.head;
    await writeFile(join(cur, 'many.txt'), 'replaced');
    await run('sh', ['-c', `echo again > "${join(cur, 'many.txt')}" && echo new > "${join(cur, 'fresh.txt')}"`]);
    const later = await events(f.store, before + 1);
    assert.deepEqual(later.map((e) => (e.type === 'FileWritten' ? `${e.data.path}:${e.data.size}` : e.type)), ['many.txt:8', 'many.txt:0', 'many.txt:6', 'fresh.txt:0', 'fresh.txt:4']);
  });

  it('fsync returns once the event is durable, and an unchanged close records nothing', async () => {
    const head = f.mounted.workspace.head;
    const fh = await open(join(cur, 'synced.txt'), 'w');
    await fh.write('durable');
    await fh.sync();
    assert.equal(await f.store.head(PROJECT), head + 1, 'in the store once fsync returned');
    await fh.close();
    assert.equal(await f.store.head(PROJECT), head + 1, 'close after fsync with no new writes adds nothing');
    const reader = await open(join(cur, 'synced.txt'), 'r');
    await reader.close();
    assert.equal(await f.store.head(PROJECT), head + 1, 'a read-only open/close adds nothing');
  });

  it('records mode and mtime set on a file open with unrecorded writes in its one event (cp -a, tar x)', async () => {
    await writeFile(join(cur, 'attrs.txt'), 'old');
    const head = f.mounted.workspace.head;
    const fh = await open(join(cur, 'attrs.txt'), 'w');
    await fh.write('new content');
    await fh.chmod(0o640);
    await fh.utimes(new Date('2021-02-03T04:05:06Z'), new Date('2021-02-03T04:05:06Z'));
    await fh.close();
    const recorded = await events(f.store, head + 1);
    assert.deepEqual(recorded.map((e) => e.type), ['FileWritten'], 'content, mode and mtime in one event');
    const written = recorded[0]!;
    assert.ok(written.type === 'FileWritten');
    assert.equal(written.data.mode, 0o640);
    assert.equal(written.data.mtimeMs, Date.parse('2021-02-03T04:05:06Z'));
    // fsync of a directory is answered (it waits for the disk like fsync of a file).
    const dir = await open(cur, 'r');
    await dir.sync();
    await dir.close();
  });

  it('fsync records even an emptied file; a reader\'s close records nothing of a writer\'s bytes', async () => {
    await writeFile(join(cur, 'emptied.txt'), 'something');
    const head = f.mounted.workspace.head;
    const fh = await open(join(cur, 'emptied.txt'), 'w');
    try {
      await fh.sync();
      assert.equal(await f.store.head(PROJECT), head + 1, 'fsync of a truncated file is durable at once');
    } finally {
      await fh.close();
    }
    assert.equal((await stat(join(cur, 'emptied.txt'))).size, 0);

    const writer = await open(join(cur, 'half.txt'), 'w');
    try {
      await writer.write('half');
      const reader = await open(join(cur, 'half.txt'), 'r');
      await reader.close();
      assert.equal(await f.store.head(PROJECT), head + 1, 'closing the reader recorded nothing');
      await writer.write(' and the rest');
    } finally {
      await writer.close();
    }
    const written = await events(f.store, head + 2);
    assert.deepEqual(written.map((e) => (e.type === 'FileWritten' ? `${e.data.path}:${e.data.size}` : e.type)), ['half.txt:17']);
  });

  it('close of a clean writer waits for another handle\'s commit of the same file', async () => {
    const path = join(cur, 'shared.bin');
    await writeFile(path, 'x');
    const head = f.mounted.workspace.head;
    const a = await open(path, 'r+');
    const b = await open(path, 'r+');
    await a.write(Buffer.alloc(MAX_FILE, 3), 0, MAX_FILE, 0);
    const closingA = a.close();
    try {
      // Let a's flush start its commit, so b finds the file clean with the commit in flight.
      await new Promise((r) => setImmediate(r));
      await b.close();
      assert.equal(await f.store.head(PROJECT), head + 1, 'durable once the second close returned');
    } finally {
      await closingA;
    }
  });

  it('writes at offsets, leaves holes as zeros, truncates and ftruncates', async () => {
    const path = join(cur, 'offsets.bin');
    const fh = await open(path, 'w+');
    await fh.write(Buffer.from('abc'), 0, 3, 10);
    await fh.write(Buffer.from('XY'), 0, 2, 1);
    await fh.close();
    assert.deepEqual(await readFile(path), Buffer.from([0, 0x58, 0x59, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x62, 0x63]));
    await truncate(path, 2);
    assert.deepEqual(await readFile(path), Buffer.from([0, 0x58]));
    const fh2 = await open(path, 'r+');
    await fh2.truncate(5);
    await fh2.close();
    assert.equal((await stat(path)).size, 5);
    await appendFile(path, 'Z');
    assert.deepEqual(await readFile(path), Buffer.from([0, 0x58, 0, 0, 0, 0x5a]));
  });

  it('refuses a file past the size limit with EFBIG at write time, recording nothing', async () => {
    const head = f.mounted.workspace.head;
    const fh = await open(join(cur, 'big.bin'), 'w');
    await fh.write(Buffer.alloc(MAX_FILE, 1), 0, MAX_FILE, 0);
    await assert.rejects(fh.write(Buffer.alloc(1), 0, 1, MAX_FILE), { code: 'EFBIG' });
    await fh.close();
    assert.equal((await stat(join(cur, 'big.bin'))).size, MAX_FILE);
    assert.equal(f.mounted.workspace.head, head + 1, 'the file up to the limit, once');
    await assert.rejects(truncate(join(cur, 'big.bin'), MAX_FILE + 1), { code: 'EFBIG' });
    assert.equal(f.mounted.workspace.head, head + 1);
  });

  it('creates, renames (also over a file) and removes files and directories with POSIX errno', async () => {
    await mkdir(join(cur, 'd1'));
    await assert.rejects(mkdir(join(cur, 'd1')), { code: 'EEXIST' });
    await assert.rejects(mkdir(join(cur, 'nope', 'deeper')), { code: 'ENOENT' });
    await writeFile(join(cur, 'd1', 'a.txt'), 'A');
    await writeFile(join(cur, 'd1', 'b.txt'), 'B');
    await assert.rejects(rmdir(join(cur, 'd1')), { code: 'ENOTEMPTY' });
    await rename(join(cur, 'd1', 'a.txt'), join(cur, 'd1', 'b.txt'));
    assert.equal(await readFile(join(cur, 'd1', 'b.txt'), 'utf8'), 'A');
    assert.deepEqual(await readdir(join(cur, 'd1')), ['b.txt']);
    await rename(join(cur, 'd1'), join(cur, 'd2'));
    assert.equal(await readFile(join(cur, 'd2', 'b.txt'), 'utf8'), 'A');
    await assert.rejects(stat(join(cur, 'd1')), { code: 'ENOENT' });
    await assert.rejects(readFile(join(cur, 'd2')), { code: 'EISDIR' });
    await assert.rejects(unlink(join(cur, 'd2', 'missing')), { code: 'ENOENT' });
    await unlink(join(cur, 'd2', 'b.txt'));
    await rmdir(join(cur, 'd2'));
    await assert.rejects(stat(join(cur, 'd2')), { code: 'ENOENT' });
  });

  it('records rm of an open file as one PathDeleted, never a .fuse_hidden name', async () => {
    const path = join(cur, 'open.txt');
    await writeFile(path, 'v1');
    const head = f.mounted.workspace.head;
    const noHidden = async (): Promise<void> => assert.deepEqual((await readdir(cur)).filter((n) => n.startsWith('.fuse_hidden')), []);
    const fh = await open(path, 'r+');
    try {
      await fh.write('more', 0);
      await rm(path);
      await noHidden();
      await assert.rejects(stat(path), { code: 'ENOENT' });
      await fh.write('still', 4);
      assert.equal((await fh.stat()).size, 9, 'the open file answers for itself');
      await noHidden();
    } finally {
      await fh.close();
    }
    await noHidden();
    const later = await events(f.store, head + 1);
    assert.deepEqual(later.map((e) => `${e.type} ${JSON.stringify(e.data)}`), ['PathDeleted {"path":"open.txt"}']);
  });

  it('answers fstat of a file only read through a descriptor after it is removed or replaced', async () => {
    const gone = join(cur, 'read-then-removed.txt');
    const replaced = join(cur, 'read-then-replaced.txt');
    await writeFile(gone, 'twelve bytes');
    await writeFile(replaced, 'seven b');
    await writeFile(join(cur, 'newer.txt'), 'the newer content');
    const reader = await open(gone, 'r');
    const other = await open(replaced, 'r');
    try {
      await rm(gone);
      await rename(join(cur, 'newer.txt'), replaced);
      assert.equal((await reader.stat()).size, 12, 'a removed file read through its descriptor still answers fstat');
      assert.equal((await other.stat()).size, 7, 'a replaced file read through its descriptor still answers fstat');
    } finally {
      await reader.close();
      await other.close();
    }
  });

  it('treats names that look like libfuse\'s hidden ones as ordinary names', async () => {
    const hidden = '.fuse_hidden0000000000000001';
    await writeFile(join(cur, 'plain.txt'), 'keep me');
    const head = f.mounted.workspace.head;
    await rename(join(cur, 'plain.txt'), join(cur, hidden));
    assert.equal(await readFile(join(cur, hidden), 'utf8'), 'keep me', 'renamed, not deleted');
    await writeFile(join(cur, '.fuse_hidden00000000000000ff'), 'data');
    assert.equal(await readFile(join(cur, '.fuse_hidden00000000000000ff'), 'utf8'), 'data');
    const later = await events(f.store, head + 1);
    assert.deepEqual(
      later.map((e) => e.type),
      ['PathMoved', 'FileWritten'],
      'a move and a write, nothing deleted',
    );
  });

  it('a rename that fails changes nothing, also for an open file it would have replaced', async () => {
    await writeFile(join(cur, 'target.txt'), 'still here');
    const head = f.mounted.workspace.head;
    const held = await open(join(cur, 'target.txt'), 'r');
    try {
      await assert.rejects(rename(join(f.mnt, 'history', `@${head}`, 'target.txt'), join(cur, 'target.txt')), { code: 'EROFS' });
      assert.equal(await readFile(join(cur, 'target.txt'), 'utf8'), 'still here');
    } finally {
      await held.close();
    }
    assert.equal(f.mounted.workspace.head, head, 'nothing recorded');
  });

  it('refuses a file name that is not UTF-8 with EINVAL, so two byte strings never become one path', async () => {
    const { stdout } = await run('python3', ['-c', `import os
try:
    os.open(os.fsencode(${JSON.stringify(cur)}) + b"/bad\\xff", os.O_CREAT | os.O_WRONLY, 0o644)
    print("created")
except OSError as e:
    print(e.errno)`]);
    assert.equal(stdout.trim(), '22');
  });

  it('keeps modes, mtimes, symlinks and statfs', async () => {
    const path = join(cur, 'attrs.sh');
    await writeFile(path, '#!/bin/sh\necho hi\n');
    await chmod(path, 0o750);
    assert.equal((await stat(path)).mode & 0o7777, 0o750);
    const when = new Date('2021-02-03T04:05:06.789Z');
    await utimes(path, when, when);
    assert.equal((await stat(path)).mtimeMs, when.getTime());
    // Through sh: spawn() blocks this process until exec, and exec of a file on our own mount needs us.
    assert.equal((await run('sh', [path])).stdout, 'hi\n');
    await symlink('attrs.sh', join(cur, 'link'));
    assert.equal(await readlink(join(cur, 'link')), 'attrs.sh');
    assert.ok((await lstat(join(cur, 'link'))).isSymbolicLink());
    assert.equal(await readFile(join(cur, 'link'), 'utf8'), '#!/bin/sh\necho hi\n');
    const fsStats = await statfs(f.mnt);
    assert.equal(fsStats.bsize, 4096);
    assert.ok(fsStats.blocks > 0 && fsStats.bfree <= fsStats.blocks);
  });

  it('serves history by sequence and by time, read-only, and the log as JSON lines', async () => {
    await writeFile(join(cur, 'h.txt'), 'v1');
    const v1 = f.mounted.workspace.head;
    const v1Time = f.mounted.workspace.state.time;
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(join(cur, 'h.txt'), 'v2 longer');
    assert.equal(await readFile(join(f.mnt, 'history', `@${v1}`, 'h.txt'), 'utf8'), 'v1');
    assert.equal(await readFile(join(f.mnt, 'history', v1Time, 'h.txt'), 'utf8'), 'v1');
    assert.equal((await stat(join(f.mnt, 'history', `@${v1}`, 'h.txt'))).size, 2);
    assert.ok((await readdir(join(f.mnt, 'history'))).includes(`@${v1}`));
    await assert.rejects(readdir(join(f.mnt, 'history', `@${f.mounted.workspace.head + 100}`)), { code: 'ENOENT' });
    await assert.rejects(writeFile(join(f.mnt, 'history', `@${v1}`, 'h.txt'), 'x'), { code: 'EROFS' });
    await assert.rejects(writeFile(join(f.mnt, 'history', `@${v1}`, 'new.txt'), 'x'), { code: 'EROFS' });
    await assert.rejects(mkdir(join(f.mnt, 'history', `@${v1}`, 'dir')), { code: 'EROFS' });
    const lines = (await readFile(join(f.mnt, 'history', 'log'), 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as RecordedEvent);
    assert.equal(lines.length, f.mounted.workspace.head);
    assert.deepEqual(lines.map((e) => e.seq), lines.map((_, i) => i + 1));
  });

  it('refuses bad input with the right errno and records nothing', async () => {
    const head = f.mounted.workspace.head;
    await writeFile(join(cur, 'victim.txt'), 'v');
    const before = head + 1;
    await assert.rejects(rename(join(cur, 'victim.txt'), join(f.mnt, 'history', 'victim.txt')), { code: 'EROFS' });
    await assert.rejects(rename(join(cur, 'victim.txt'), join(f.mnt, 'shadows', 'victim.txt')), { code: 'EXDEV' });
    await assert.rejects(writeFile(join(f.mnt, 'new-top-level'), 'x'), { code: 'EROFS' });
    await assert.rejects(writeFile(join(f.mnt, '.bridge', 'status'), 'x'), { code: 'EROFS' });
    // NUL and '/' inside a name never reach a filesystem (the kernel splits and terminates paths there).
    await assert.rejects(writeFile(join(cur, 'x'.repeat(256)), 'x'), { code: 'ENAMETOOLONG' });
    await assert.rejects(writeFile(join(cur, 'no-dir', 'f'), 'x'), { code: 'ENOENT' });
    await assert.rejects(run('mkfifo', [join(cur, 'fifo')]));
    await assert.rejects(writeFile(join(f.mnt, 'shadows', 'victim.txt.json'), 'not json'), { code: 'EINVAL' });
    await assert.rejects(writeFile(join(f.mnt, 'shadows', 'victim.txt.json'), '{"line": 3}'), { code: 'EINVAL' });
    assert.equal(await f.store.head(PROJECT), before, 'none of those reached the log');
  });

  it('refuses impossible history instants, a shadow of a missing path with ENOENT, and drops setuid/setgid', async () => {
    await writeFile(join(cur, 'suid.sh'), '#!/bin/sh\n');
    const head = f.mounted.workspace.head;
    for (const name of ['2026-02-30T00:00:00Z', '2025-02-29T00:00:00Z', '2026-04-31T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T23:60:00Z', '2016-12-31T23:59:60Z', '2026-01-01T00:00:00+24:00', '2026-13-01T00:00:00Z', '2026-00-10T00:00:00Z']) {
      await assert.rejects(readdir(join(f.mnt, 'history', name)), { code: 'ENOENT' }, name);
    }
    assert.ok((await stat(join(f.mnt, 'history', '2024-02-29T00:00:00Z'))).isDirectory(), 'a real leap day is a view');
    await assert.rejects(writeFile(join(f.mnt, 'shadows', 'missing.txt.json'), '{"text":"x"}'), { code: 'ENOENT' });
    await chmod(join(cur, 'suid.sh'), 0o6755);
    assert.equal((await stat(join(cur, 'suid.sh'))).mode & 0o7777, 0o755, 'chmod drops setuid and setgid');
    await mkdir(join(cur, 'sgid-dir'), 0o3777);
    assert.equal((await stat(join(cur, 'sgid-dir'))).mode & 0o7000, 0o1000, 'mkdir keeps sticky, drops setgid');
    const fh = await open(join(cur, 'suid-new'), 'w', 0o4755);
    await fh.close();
    assert.equal((await stat(join(cur, 'suid-new'))).mode & 0o7000, 0, 'create drops setuid');
    const recorded = (await events(f.store, head + 1)).map((e) => ('mode' in e.data ? e.data.mode : undefined)).filter((m) => m !== undefined);
    assert.ok(recorded.length >= 3 && recorded.every((m) => (m & 0o6000) === 0), `no event stores setuid/setgid: ${recorded.map((m) => m.toString(8)).join(',')}`);
  });

  it('annotates through shadows/<path>.json', async () => {
    await mkdir(join(cur, 'src'));
    await writeFile(join(cur, 'src', 'main.ts'), 'export {};\n');
    assert.deepEqual(JSON.parse(await readFile(join(f.mnt, 'shadows', 'src', 'main.ts.json'), 'utf8')), []);
    await writeFile(join(f.mnt, 'shadows', 'src', 'main.ts.json'), JSON.stringify({ text: 'looks good', line: 1, tags: ['review'] }));
    const notes = JSON.parse(await readFile(join(f.mnt, 'shadows', 'src', 'main.ts.json'), 'utf8')) as Array<{ text: string; line: number; tags: string[]; actor: string }>;
    assert.equal(notes.length, 1);
    assert.deepEqual([notes[0]?.text, notes[0]?.line, notes[0]?.tags, notes[0]?.actor], ['looks good', 1, ['review'], 'test']);
    assert.ok((await readdir(join(f.mnt, 'shadows', 'src'))).includes('main.ts.json'));
  });

  it('serves context packages read-only', async () => {
    await f.mounted.workspace.execute({ type: 'CreateContextPackage', name: 'handoff', paths: ['src/main.ts'], description: 'for the reviewer' });
    assert.deepEqual((await readdir(join(f.mnt, 'context'))).sort(), ['handoff']);
    assert.deepEqual((await readdir(join(f.mnt, 'context', 'handoff'))).sort(), ['manifest.json', 'src']);
    assert.equal(await readFile(join(f.mnt, 'context', 'handoff', 'src', 'main.ts'), 'utf8'), 'export {};\n');
    const manifest = JSON.parse(await readFile(join(f.mnt, 'context', 'handoff', 'manifest.json'), 'utf8')) as { description: string };
    assert.equal(manifest.description, 'for the reviewer');
    await assert.rejects(writeFile(join(f.mnt, 'context', 'handoff', 'manifest.json'), '{}'), { code: 'EROFS' });
  });

  it('streams new events to a blocked reader as JSON lines', async () => {
    const fh = await open(join(f.mnt, 'streams', 'events'), 'r');
    try {
      const buffer = Buffer.alloc(64 * 1024);
      const pending = fh.read(buffer, 0, buffer.length, null);
      await new Promise((r) => setTimeout(r, 100));
      await writeFile(join(cur, 'streamed.txt'), 'hello');
      let text = '';
      const deadline = Date.now() + 5000;
      let read = await pending;
      for (;;) {
        text += buffer.subarray(0, read.bytesRead).toString();
        if (text.includes('streamed.txt') || Date.now() > deadline) break;
        read = await fh.read(buffer, 0, buffer.length, null);
      }
      const event = text.split('\n').filter((l) => l.includes('streamed.txt')).map((l) => JSON.parse(l) as RecordedEvent)[0];
      assert.equal(event?.type, 'FileWritten');
      assert.equal(event?.seq, f.mounted.workspace.head);
    } finally {
      await fh.close();
    }
  });

  it('drops the backlog of a reader that does not read for one overflow line', async () => {
    await writeFile(join(cur, 'noted.txt'), 'n');
    const fh = await open(join(f.mnt, 'streams', 'events'), 'r');
    try {
      // 20 events of ~60 KiB each: more than the 1 MiB a reader may have queued.
      for (let i = 0; i < 20; i++) await f.mounted.workspace.execute({ type: 'Annotate', path: 'noted.txt', text: String.fromCharCode(97 + i).repeat(60_000) });
      const head = f.mounted.workspace.head;
      const buffer = Buffer.alloc(256 * 1024);
      let text = '';
      while (!text.includes(`"seq":${head},`)) {
        const { bytesRead } = await fh.read(buffer, 0, buffer.length, null);
        text += buffer.subarray(0, bytesRead).toString();
      }
      const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { overflow?: boolean; head?: number; seq?: number });
      assert.equal(lines[0]?.overflow, true, 'the reader learns it missed events');
      assert.deepEqual(lines.slice(1).map((l) => l.seq), Array.from({ length: lines.length - 1 }, (_, i) => lines[0]!.head! + 1 + i), 'then the events after it');
      assert.ok(text.length <= 1024 * 1024 + 4096, `at most 1 MiB queued, got ${text.length}`);
    } finally {
      await fh.close();
    }
  });

  it('lets a reader blocked on streams/events be killed promptly (heartbeats)', async () => {
    const started = Date.now();
    const killed = await run('timeout', ['2', 'cat', join(f.mnt, 'streams', 'events')]).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code: number; stdout: string }) => error,
    );
    assert.equal(killed.code, 124, 'cat ran until timeout killed it');
    assert.ok(Date.now() - started < 4000, `killed within 4 s, took ${Date.now() - started} ms`);
    assert.match(killed.stdout, /"heartbeat":true/);
  });

  it('reports status as JSON', async () => {
    const status = JSON.parse(await readFile(join(f.mnt, '.bridge', 'status'), 'utf8')) as { project: string; head: number; store: { kind: string }; readOnly: boolean; mount: { healthy: boolean } };
    assert.equal(status.project, 'default/fs-test');
    assert.equal(status.head, f.mounted.workspace.head);
    assert.equal(status.store.kind, 'embedded');
    assert.equal(status.readOnly, false);
    assert.equal(status.mount.healthy, true);
  });

  it('answers /.bridge/validate on the same descriptor, with an error object when it cannot', async () => {
    const ask = async (request: string): Promise<unknown> => {
      const fh = await open(join(f.mnt, '.bridge', 'validate'), 'r+');
      try {
        await fh.write(request);
        const buffer = Buffer.alloc(4096);
        const { bytesRead } = await fh.read(buffer, 0, buffer.length, null);
        return JSON.parse(buffer.subarray(0, bytesRead).toString());
      } finally {
        await fh.close();
      }
    };
    assert.match(((await ask('{"tool":"bash"}\n')) as { error: string }).error, /no validator/);
    assert.match(((await ask('{not json\n')) as { error: string }).error, /no validator/);
    assert.match(((await ask('\n')) as { error: string }).error, /empty request/);
  });

  it('refuses a validate request past the speed layer\'s limit with EFBIG', async () => {
    const fh = await open(join(f.mnt, '.bridge', 'validate'), 'r+');
    try {
      await fh.write(Buffer.alloc(MAX_REQUEST_BYTES, 0x20));
      await assert.rejects(fh.write(Buffer.from('x')), { code: 'EFBIG' });
    } finally {
      await fh.close();
    }
  });

  it('runs git, tar, cp -a, rsync -a and editor-style write-then-rename in current/', async () => {
    const work = join(cur, 'tools');
    await mkdir(work);
    // `git -C`, not spawn's cwd: the child's chdir would need this (blocked) process to answer.
    const git = (...args: string[]) => run('git', ['-C', join(work, 'repo'), '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args]);
    await mkdir(join(work, 'repo'));
    await git('init', '-q', '.');
    await writeFile(join(work, 'repo', 'a.txt'), 'one\n');
    await git('add', 'a.txt');
    await git('commit', '-qm', 'first');
    await writeFile(join(work, 'repo', 'a.txt'), 'two\n');
    await git('commit', '-qam', 'second');
    assert.equal((await git('log', '--format=%s')).stdout, 'second\nfirst\n');
    assert.equal((await git('status', '--porcelain')).stdout, '');
    assert.equal((await git('fsck', '--no-progress')).stdout, '');

    const src = join(f.root, 'src-tree');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'one.txt'), 'one');
    await writeFile(join(src, 'sub', 'two.bin'), Buffer.alloc(70_000, 7));
    await chmod(join(src, 'one.txt'), 0o600);
    const when = new Date('2020-01-01T00:00:00Z');
    await utimes(join(src, 'one.txt'), when, when);
    await run('tar', ['cf', join(f.root, 't.tar'), '-C', src, '.']);
    await mkdir(join(work, 'tarred'));
    await run('tar', ['xf', join(f.root, 't.tar'), '-C', join(work, 'tarred')]);
    await run('cp', ['-a', src, join(work, 'copied')]);
    await run('rsync', ['-a', `${src}/`, join(work, 'synced')]);
    for (const dir of ['tarred', 'copied', 'synced']) {
      await run('diff', ['-r', src, join(work, dir)]);
      assert.equal((await stat(join(work, dir, 'one.txt'))).mode & 0o777, 0o600, `${dir} keeps the mode`);
    }
    // tar sets the mtime with the atime left out (UTIME_OMIT): SETATTR carries the mtime alone (ADR 0087).
    for (const dir of ['tarred', 'copied', 'synced']) {
      assert.equal((await stat(join(work, dir, 'one.txt'))).mtimeMs, when.getTime(), `${dir} keeps the mtime`);
    }
    // Same mtimes and sizes: a second rsync has nothing to copy.
    assert.equal((await run('rsync', ['-a', '--itemize-changes', `${src}/`, join(work, 'synced')])).stdout.trim(), '');

    // What editors do: write a temp file, fsync, rename it over the original.
    await writeFile(join(work, 'doc.txt'), 'draft');
    await run('sh', ['-c', `printf final > "${work}/.doc.txt.swp" && sync "${work}/.doc.txt.swp" && mv "${work}/.doc.txt.swp" "${work}/doc.txt"`]);
    assert.equal(await readFile(join(work, 'doc.txt'), 'utf8'), 'final');
    assert.ok(!(await readdir(work)).includes('.doc.txt.swp'));
    await rm(join(work, 'tarred'), { recursive: true });
    await assert.rejects(stat(join(work, 'tarred')), { code: 'ENOENT' });
  });

  it('keeps an mtime set together with a different atime (cp -a, rsync -a)', async () => {
    const path = join(cur, 'times.txt');
    await writeFile(path, 't');
    await utimes(path, new Date('2024-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    assert.equal((await stat(path)).mtimeMs, Date.parse('2020-01-01T00:00:00Z'));
    await f.mounted.workspace.sync(); // utimens returned before its append (ADR 0098)
    const head = f.mounted.workspace.head;
    const [event] = await f.store.read(PROJECT, { from: head, to: head });
    assert.deepEqual(event?.data, { path: 'times.txt', mtimeMs: Date.parse('2020-01-01T00:00:00Z') });
  });

  it('reads history through the page cache and asks for no FLUSH at a reader\'s close', async () => {
    await writeFile(join(cur, 'cached.txt'), 'immutable');
    const at = join(f.mnt, 'history', `@${f.mounted.workspace.head}`, 'cached.txt');
    assert.equal(await readFile(at, 'utf8'), 'immutable');
    const before = await opCounts();
    for (let i = 0; i < 3; i++) assert.equal(await readFile(at, 'utf8'), 'immutable');
    for (let i = 0; i < 3; i++) assert.equal(await readFile(join(cur, 'cached.txt'), 'utf8'), 'immutable');
    const after = await opCounts();
    assert.equal(after.open - before.open, 6, 'every open still reaches the mount');
    // keep_cache on history: no READ after the first; current/ once more, as its first reader's open
    // here drops whatever the kernel held (the writer's pages), then keeps it while unchanged.
    assert.equal(after.read - before.read, 1, 'only the first open of current/ reads through the mount');
    assert.equal(after.flush - before.flush, 0, 'a reader\'s close sends no FLUSH (FOPEN_NOFLUSH)');
  });

  it('answers a stat after create, chmod and utimens from the change\'s own reply', async () => {
    const files = 20;
    const before = await opCounts();
    for (let i = 0; i < files; i++) {
      const fh = await open(join(cur, `answered${i}.txt`), 'wx', 0o644);
      await fh.chmod(0o600);
      await fh.utimes(new Date('2022-03-04T05:06:07Z'), new Date('2022-03-04T05:06:07Z'));
      const st = await fh.stat();
      await fh.close();
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal(st.mtimeMs, Date.parse('2022-03-04T05:06:07Z'));
    }
    // Left per file: the lookup that finds no such name before the create (plus a few lookups of
    // current/ itself as its 50 ms entry expires); each change used to add one more.
    const getattrs = (await opCounts()).getattr - before.getattr;
    assert.ok(getattrs < 2 * files, `${getattrs} getattr round trips for ${files} files`);
  });

  it('lists a directory with each name\'s attributes: stat and unlink of a listed name need no LOOKUP (READDIRPLUS)', async () => {
    const dir = join(cur, 'listed');
    await mkdir(dir);
    const files = 40;
    for (let i = 0; i < files; i++) await writeFile(join(dir, `f${i}`), 'x'.repeat(i));
    // The entries the creates gave the kernel expire (50 ms): from here on, only the listing's count.
    await sleep(120);
    const before = await opCounts();
    const names = await readdir(dir);
    const listedAt = performance.now();
    assert.equal(names.length, files);
    // A name used more than 50 ms after the listing is looked up again (a slow machine): those may be.
    let late = 0;
    const timely = (): void => void (performance.now() - listedAt > 40 && late++);
    for (const name of names) {
      timely();
      assert.equal((await lstat(join(dir, name))).size, Number(name.slice(1)));
    }
    for (const name of names) {
      timely();
      await unlink(join(dir, name));
    }
    const after = await opCounts();
    assert.ok(after.readdirplus > before.readdirplus, 'the kernel asked for the plus form');
    // Plus the listed directory's own, once its entry expires.
    const lookups = after.lookup - before.lookup;
    assert.ok(lookups <= late + 2, `${lookups} LOOKUPs for ${2 * files} uses of listed names, ${late} of them late`);
    assert.deepEqual(await readdir(dir), []);
  });

  it('lists history/ without restoring a past view: a listing carries only what is at hand', async () => {
    for (let i = 0; i < 3; i++) await writeFile(join(cur, `past${i}.txt`), `v${i}`);
    const seq = f.mounted.workspace.head - 1;
    assert.ok((await readdir(join(f.mnt, 'history'))).includes(`@${seq}`));
    assert.equal(f.mounted.workspace.readyStateAt(seq), undefined, 'the listing restored nothing');
    // Used, it loads as before.
    assert.ok((await stat(join(f.mnt, 'history', `@${seq}`))).isDirectory());
    assert.notEqual(f.mounted.workspace.readyStateAt(seq), undefined);
  });

  it('shows another mount\'s change of a file it has cached at the next open (close-to-open)', async () => {
    const other = await mountFixture({ storeDir: join(f.root, 'store') });
    try {
      const here = join(cur, 'shared.txt');
      const there = join(other.mnt, 'current', 'shared.txt');
      await writeFile(here, 'first');
      await eventually('the first write to show on the other mount', async () => (await readFile(there, 'utf8')) === 'first');
      // Same size, so nothing but a new open can tell the kernel its cached page is stale.
      await writeFile(here, 'again');
      await eventually('the same-size rewrite to show there', async () => (await readFile(there, 'utf8')) === 'again');
    } finally {
      await other.cleanup();
    }
  });

  it('keeps everything across unmount and a fresh mount of the same store', async () => {
    const head = f.mounted.workspace.head;
    const content = await readFile(join(cur, 'many.txt'));
    const storeDir = join(f.root, 'store');
    await f.mounted.unmount();
    await f.store.close();
    f.store = await openStore(`file://${storeDir}`);
    f.mounted = await mountProject({ store: f.store, project: PROJECT, mountpoint: f.mnt, actor: 'test', limits: { maxFileBytes: MAX_FILE } });
    assert.equal(f.mounted.workspace.head, head);
    assert.deepEqual(await readFile(join(cur, 'many.txt')), content);
    assert.equal(await readFile(join(cur, 'tools', 'doc.txt'), 'utf8'), 'final');
  });
});

describe('FUSE filesystem: chmod and utimens of a recorded file (ADR 0098)', { timeout: 60_000 }, () => {
  const when = new Date('2021-02-03T04:05:06.789Z');
  const later = new Date('2022-02-03T04:05:06.789Z');

  /** Appends held until `release()`, and the event types of each append, in order. */
  const held = () => {
    let gate: Promise<void> | undefined;
    let release = (): void => {};
    const appends: string[][] = [];
    return {
      appends,
      hold: () => (gate = new Promise<void>((r) => (release = r))),
      release: () => {
        gate = undefined;
        release();
      },
      beforeAppend: (types: string[]) => {
        appends.push(types);
        return gate ?? Promise.resolve();
      },
    };
  };

  /** Resolves once the mount has handed a command of `type` to its workspace (a spy: the call goes on unchanged). */
  const handedOver = (workspace: ProjectWorkspace): ((type: Command['type']) => Promise<unknown>) => {
    const seen: Command['type'][] = [];
    const execute = workspace.execute.bind(workspace);
    workspace.execute = (command, ...rest) => {
      seen.push(command.type);
      return execute(command, ...rest);
    };
    return (type) => eventually(`the mount to queue a ${type}`, () => seen.includes(type));
  };

  it('return before their append: stat shows them meanwhile, and a rename after them waits and shares an append with them', async () => {
    const appends = held();
    const f = await mountFixture({ beforeAppend: appends.beforeAppend });
    try {
      const cur = join(f.mnt, 'current');
      const tmp = join(cur, '.one.txt.Ab12Cd');
      await writeFile(tmp, 'one');
      const head = await f.store.head(PROJECT);
      appends.hold();
      await chmod(tmp, 0o600);
      assert.equal(await f.store.head(PROJECT), head, 'chmod returned before anything was appended');
      // Past the kernel's 50 ms attribute cache: this stat is answered by the mount, from what is queued.
      await sleep(120);
      const shown = await stat(tmp);
      assert.equal(shown.mode & 0o7777, 0o600);
      const queued = handedOver(f.mounted.workspace);
      await utimes(tmp, when, when);
      const renamed = rename(tmp, join(cur, 'one.txt'));
      // The chmod's append is held: utimens and the rename queue behind it, and go out together.
      await queued('Move');
      assert.equal(await f.store.head(PROJECT), head, 'still nothing appended');
      appends.release();
      await renamed;
      assert.deepEqual(appends.appends.slice(-2), [['AttributesChanged'], ['AttributesChanged', 'PathMoved']]);
      assert.deepEqual((await events(f.store, head + 1)).map((e) => e.type), ['AttributesChanged', 'AttributesChanged', 'PathMoved']);
      const moved = await stat(join(cur, 'one.txt'));
      assert.deepEqual([moved.mode & 0o7777, moved.mtimeMs], [0o600, when.getTime()]);
      await assert.rejects(chmod(join(cur, 'missing'), 0o600), { code: 'ENOENT' });
    } finally {
      appends.release();
      await f.cleanup();
    }
  });

  it('a file opened for writing while they are queued starts from them, so its record keeps them', async () => {
    const appends = held();
    const f = await mountFixture({ beforeAppend: appends.beforeAppend });
    try {
      const path = join(f.mnt, 'current', 'run.sh');
      await writeFile(path, 'echo a\n');
      const head = await f.store.head(PROJECT);
      appends.hold();
      await chmod(path, 0o755);
      await utimes(path, when, when);
      const untouched = await open(path, 'r+');
      try {
        assert.equal((await untouched.stat()).mtimeMs, when.getTime(), 'an open writer that has not written shows the queued mtime');
        await utimes(path, later, later);
        assert.equal((await untouched.stat()).mtimeMs, later.getTime(), 'and a utimens made while it is open');
      } finally {
        await untouched.close();
      }
      const queued = handedOver(f.mounted.workspace);
      const closed = appendFile(path, 'echo b\n');
      await queued('WriteFile');
      appends.release();
      await closed;
      const recorded = await events(f.store, head + 1);
      assert.deepEqual(recorded.map((e) => e.type), ['AttributesChanged', 'AttributesChanged', 'AttributesChanged', 'FileWritten']);
      const written = recorded[3];
      assert.equal(written?.type === 'FileWritten' && written.data.mode, 0o755, 'the write keeps the chmod queued before it');
      assert.equal((await stat(path)).mode & 0o7777, 0o755);
    } finally {
      appends.release();
      await f.cleanup();
    }
  });

  it('with --sync close, return once their append has', async () => {
    // Each append 50 ms late: a chmod that did not wait would return before the head moves.
    const f = await mountFixture({ sync: 'close', beforeAppend: () => sleep(50) });
    try {
      const path = join(f.mnt, 'current', 'strict.txt');
      await writeFile(path, 'x');
      const head = await f.store.head(PROJECT);
      await chmod(path, 0o600);
      assert.equal(await f.store.head(PROJECT), head + 1);
      await utimes(path, when, when);
      assert.equal(await f.store.head(PROJECT), head + 2);
    } finally {
      await f.cleanup();
    }
  });

  it('fsync and unmount wait for them', async () => {
    let delay = 0;
    const f = await mountFixture({ beforeAppend: () => sleep(delay) });
    try {
      const storeDir = join(f.root, 'store');
      const cur = join(f.mnt, 'current');
      await writeFile(join(cur, 'a'), 'a');
      await writeFile(join(cur, 'b'), 'b');
      delay = 200;
      await chmod(join(cur, 'a'), 0o600);
      const fh = await open(join(cur, 'a'), 'r');
      await fh.sync();
      await fh.close();
      const afterFsync = await events(f.store, 1);
      assert.deepEqual(afterFsync.at(-1)?.data, { path: 'a', mode: 0o600 });
      await utimes(join(cur, 'b'), when, when);
      await f.mounted.unmount();
      const reopened = await openStore(`file://${storeDir}`);
      try {
        assert.deepEqual((await events(reopened, afterFsync.length + 1)).map((e) => e.data), [{ path: 'b', mtimeMs: when.getTime() }]);
      } finally {
        await reopened.close();
      }
    } finally {
      // Unmounts (again: a no-op after the one above) and closes the fixture's store.
      await f.cleanup();
    }
  });
});

describe('FUSE filesystem, read-only mount with a validator', { timeout: 60_000 }, () => {
  let f: Fixture;
  before(async () => {
    f = await mountFixture({ readOnly: true, validator: { validate: async (r) => ({ decision: 'allow', echo: r }) } });
  });
  after(async () => {
    await f?.cleanup();
  });

  it('refuses every change with EROFS', async () => {
    const cur = join(f.mnt, 'current');
    await assert.rejects(writeFile(join(cur, 'x'), 'x'), { code: 'EROFS' });
    await assert.rejects(mkdir(join(cur, 'd')), { code: 'EROFS' });
    await assert.rejects(symlink('x', join(cur, 'l')), { code: 'EROFS' });
    assert.equal(f.mounted.workspace.head, 0);
    const status = JSON.parse(await readFile(join(f.mnt, '.bridge', 'status'), 'utf8')) as { readOnly: boolean };
    assert.equal(status.readOnly, true);
  });

  it('passes validate requests to the validator', async () => {
    const fh = await open(join(f.mnt, '.bridge', 'validate'), 'r+');
    try {
      await fh.write('{"tool":"bash","input":"ls"}\n');
      const buffer = Buffer.alloc(4096);
      const { bytesRead } = await fh.read(buffer, 0, buffer.length, null);
      assert.deepEqual(JSON.parse(buffer.subarray(0, bytesRead).toString()), { decision: 'allow', echo: '{"tool":"bash","input":"ls"}' });
    } finally {
      await fh.close();
    }
  });
});
