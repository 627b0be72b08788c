/**
 * The FUSE door: hostile operations on a real mount (served by this process, so only async fs and
 * child processes touch it). Each row asserts the exact errno, that the log did not move, that the
 * tree is as it was, and that no open file or write buffer was left behind.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { chmod, link, lstat, mkdir, open, readdir, readFile, readlink, rename, rmdir, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openStore, type EventStore } from '@lighthouse-bridge/core';
import { mountProject, type MountedProject } from '@lighthouse-bridge/csi-driver';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { door, type Case } from './table.js';

const run = promisify(execFile);
const PROJECT = { namespace: 'default', name: 'hostile-fuse' };
const MAX_FILE = 1024 * 1024;
const MAX_PATH = 200;
const HUGE = 2 ** 40;

interface Mount {
  mnt: string;
  cur: string;
  store: EventStore;
  mounted: MountedProject;
}

interface FuseCase extends Case {
  /** The hostile operation; `m` is the mount. */
  act(m: Mount): Promise<unknown>;
  code: string;
}

let m: Mount;
/** A chain of directories that ends a few bytes short of the path limit. */
let deepest: string;
/** Failures the mount answered with EIO: a hostile op must get its own errno, never a surprise. */
const reported: string[] = [];
let removeTmp: (() => Promise<void>) | undefined;

before(async () => {
  const tmp = await tempDir('lhb-adv-fuse-');
  removeTmp = tmp.remove;
  const store = await openStore(`file://${join(tmp.dir, 'store')}`);
  const mnt = join(tmp.dir, 'mnt');
  const mounted = await mountProject({ store, project: PROJECT, mountpoint: mnt, actor: 'adversary', limits: { maxFileBytes: MAX_FILE, maxPathBytes: MAX_PATH },
    onError: (error, context) => reported.push(`${context.op ?? 'workspace'}: ${error.stack ?? error.message}`),
  });
  m = { mnt, cur: join(mnt, 'current'), store, mounted };
  await writeFile(join(m.cur, 'file.txt'), 'seed');
  await mkdir(join(m.cur, 'dir'));
  await mkdir(join(m.cur, 'dir', 'sub'));
  await writeFile(join(m.cur, 'dir', 'inner.txt'), 'inner');
  await symlink('file.txt', join(m.cur, 'link'));
  await writeFile(join(m.mnt, 'shadows', 'file.txt.json'), '{"text":"seeded note"}');
  let rel = 'deep';
  while (rel.length + '/level-00'.length <= MAX_PATH - 8) rel += `/level-${String(rel.length % 100).padStart(2, '0')}`;
  deepest = cur(rel);
  await mkdir(deepest, { recursive: true });
});

after(async () => {
  await m?.mounted.unmount();
  await m?.store.close();
  await removeTmp?.();
});

/** Every entry under current/ with its kind, size and mode: what a hostile op must leave alone. */
async function tree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const st = await lstat(join(dir, name));
    out.push(`${prefix}${name} ${st.mode.toString(8)} ${st.isDirectory() ? '-' : st.size}`);
    if (st.isDirectory()) out.push(...(await tree(join(dir, name), `${prefix}${name}/`)));
  }
  return out;
}

interface MountStatus {
  mount: { openFiles: number; writeBufferBytes: number };
}

/** The kernel sends release after close returns: give the last releases a moment to arrive. */
async function settled(): Promise<MountStatus['mount']> {
  let left: MountStatus['mount'] = { openFiles: -1, writeBufferBytes: -1 };
  for (let i = 0; i < 100; i++) {
    const { openFiles, writeBufferBytes } = (JSON.parse(await readFile(join(m.mnt, '.bridge', 'status'), 'utf8')) as MountStatus).mount;
    left = { openFiles, writeBufferBytes };
    if (openFiles === 0 && writeBufferBytes === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return left;
}

const cur = (...parts: string[]): string => join(m.cur, ...parts);
const at = (...parts: string[]): string => join(m.mnt, ...parts);
/** A syscall node cannot make, through python (mknod, xattrs, O_EXCL and friends). */
const py = (code: string, args: string[] = []): Promise<unknown> => run('python3', ['-c', `import os, sys\ntry:\n  ${code}\nexcept OSError as e:\n  sys.stderr.write(__import__('errno').errorcode[e.errno]); sys.exit(1)`, ...args]);
const pyCode = async (code: string): Promise<never> => {
  try {
    await py(code);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw Object.assign(new Error(`python: ${stderr}`), { code: stderr.trim() });
  }
  throw new Error('python call succeeded');
};

const table: FuseCase[] = [
  { name: 'create with a 256-byte name', act: () => writeFile(cur('n'.repeat(256)), 'x'), code: 'ENAMETOOLONG' },
  { name: 'mkdir with a 256-byte name', act: () => mkdir(cur('d'.repeat(256))), code: 'ENAMETOOLONG' },
  { name: 'rename to a 256-byte name', act: () => rename(cur('file.txt'), cur('r'.repeat(256))), code: 'ENAMETOOLONG' },
  { name: 'mkdir one level past the project path limit (deep nesting)', act: () => mkdir(join(deepest, 'one-more-level-past-the-limit')), code: 'ENAMETOOLONG' },
  { name: 'create a file whose path passes the limit', act: () => writeFile(cur('dir', 'sub', 'p'.repeat(MAX_PATH - 'dir/sub/'.length + 1)), 'x'), code: 'ENAMETOOLONG' },
  { name: 'rename a directory into its own subdirectory', act: () => rename(cur('dir'), cur('dir', 'sub', 'dir')), code: 'EINVAL' },
  { name: 'rename into history/ through ..', act: () => rename(cur('file.txt'), join(m.cur, '..', 'history', 'file.txt')), code: 'EROFS' },
  { name: 'rename current/ to shadows/ (another view)', act: () => rename(cur('file.txt'), at('shadows', 'moved.txt')), code: 'EXDEV' },
  { name: 'rename out of a history view', act: () => rename(at('history', '@1', 'file.txt'), cur('stolen.txt')), code: 'EROFS' },
  { name: 'rename .bridge/status into current/', act: () => rename(at('.bridge', 'status'), cur('status')), code: 'EROFS' },
  { name: 'rename the current/ view itself', act: () => rename(m.cur, at('renamed')), code: 'EROFS' },
  { name: 'rename a missing source', act: () => rename(cur('missing.txt'), cur('other.txt')), code: 'ENOENT' },
  { name: 'rename a directory over a file', act: () => rename(cur('dir', 'sub'), cur('file.txt')), code: 'ENOTDIR' },
  { name: 'write into a history view', act: () => writeFile(at('history', '@1', 'file.txt'), 'x'), code: 'EROFS' },
  { name: 'create in a history view', act: () => writeFile(at('history', '@1', 'new.txt'), 'x'), code: 'EROFS' },
  { name: 'write .bridge/status', act: () => writeFile(at('.bridge', 'status'), '{}'), code: 'EROFS' },
  { name: 'write streams/events', act: () => writeFile(at('streams', 'events'), 'x'), code: 'EROFS' },
  { name: 'create a file at the mount root', act: () => writeFile(at('new-top-level'), 'x'), code: 'EROFS' },
  { name: 'mkdir in history/', act: () => mkdir(at('history', 'mine')), code: 'EROFS' },
  { name: 'write at offset 2^40', act: () => open(cur('file.txt'), 'r+').then((fh) => fh.write('x', HUGE).finally(() => fh.close())), code: 'EFBIG' },
  { name: 'write one byte past the file limit', act: () => open(cur('file.txt'), 'r+').then((fh) => fh.write('x', MAX_FILE).finally(() => fh.close())), code: 'EFBIG' },
  { name: 'truncate to 2^40 by path', act: () => truncate(cur('file.txt'), HUGE), code: 'EFBIG' },
  { name: 'ftruncate to 2^40 on an open descriptor', act: () => open(cur('file.txt'), 'r+').then((fh) => fh.truncate(HUGE).finally(() => fh.close())), code: 'EFBIG' },
  { name: 'O_CREAT|O_EXCL on an existing file', act: () => open(cur('file.txt'), 'wx').then((fh) => fh.close()), code: 'EEXIST' },
  { name: 'O_CREAT|O_EXCL on an existing directory', act: () => open(cur('dir'), 'wx').then((fh) => fh.close()), code: 'EEXIST' },
  { name: 'O_APPEND open of a directory for writing', act: () => open(cur('dir'), 'a').then((fh) => fh.close()), code: 'EISDIR' },
  { name: 'write through a read-only descriptor', act: () => open(cur('file.txt'), 'r').then((fh) => fh.write('x').finally(() => fh.close())), code: 'EBADF' },
  { name: 'mknod a FIFO', act: () => pyCode(`os.mkfifo(${JSON.stringify(cur('fifo'))})`), code: 'EPERM' },
  { name: 'mknod a character device', act: () => pyCode(`os.mknod(${JSON.stringify(cur('dev'))}, 0o20644, os.makedev(1, 3))`), code: 'EPERM' },
  // No link operation: the kernel refuses a hard link on this filesystem before asking us.
  { name: 'hard link', act: () => link(cur('file.txt'), cur('hard.txt')), code: 'EPERM' },
  { name: 'symlink inside a history view', act: () => symlink('file.txt', at('history', '@1', 'ln')), code: 'EROFS' },
  { name: 'setxattr on a file', act: () => pyCode(`os.setxattr(${JSON.stringify(cur('file.txt'))}, 'user.evil', b'1')`), code: 'ENOTSUP' },
  { name: 'removexattr on a file', act: () => pyCode(`os.removexattr(${JSON.stringify(cur('file.txt'))}, 'user.evil')`), code: 'ENOTSUP' },
  { name: 'chmod a history file', act: () => chmod(at('history', '@1', 'file.txt'), 0o777), code: 'EROFS' },
  { name: 'chmod the mount root', act: () => chmod(m.mnt, 0o777), code: 'EROFS' },
  { name: 'chmod .bridge/validate', act: () => chmod(at('.bridge', 'validate'), 0o777), code: 'EROFS' },
  { name: 'utimes on a history file', act: () => utimes(at('history', '@1', 'file.txt'), 1, 1), code: 'EROFS' },
  { name: 'truncate a history file', act: () => truncate(at('history', '@1', 'file.txt'), 0), code: 'EROFS' },
  { name: 'unlink in a history view', act: () => unlink(at('history', '@1', 'file.txt')), code: 'EROFS' },
  { name: 'unlink a directory', act: () => unlink(cur('dir')), code: 'EISDIR' },
  { name: 'rmdir a non-empty directory', act: () => rmdir(cur('dir')), code: 'ENOTEMPTY' },
  { name: 'rmdir a file', act: () => rmdir(cur('file.txt')), code: 'ENOTDIR' },
  { name: 'mkdir over an existing file', act: () => mkdir(cur('file.txt')), code: 'EEXIST' },
  { name: 'create beneath a file', act: () => writeFile(cur('file.txt', 'child'), 'x'), code: 'ENOTDIR' },
  { name: 'readdir of a file', act: () => readdir(cur('file.txt')), code: 'ENOTDIR' },
  { name: 'readlink of a regular file', act: () => readlink(cur('file.txt')), code: 'EINVAL' },
  { name: 'a history view of an impossible date', act: () => readdir(at('history', '2026-02-30T00:00:00Z')), code: 'ENOENT' },
  { name: 'a history view at 24:00', act: () => readdir(at('history', '2026-01-01T24:00:00Z')), code: 'ENOENT' },
  { name: 'a history view of a negative sequence', act: () => readdir(at('history', '@-1')), code: 'ENOENT' },
  { name: 'a history view in the future', act: () => readdir(at('history', '2999-01-01T00:00:00Z')), code: 'ENOENT' },
  { name: 'annotate a path the project lacks', act: () => writeFile(at('shadows', 'missing.txt.json'), '{"text":"x"}'), code: 'ENOENT' },
  { name: 'annotate with something not JSON', act: () => writeFile(at('shadows', 'file.txt.json'), 'not json'), code: 'EINVAL' },
  { name: 'annotate with a non-integer line', act: () => writeFile(at('shadows', 'file.txt.json'), '{"text":"x","line":1.5}'), code: 'EINVAL' },
  { name: 'rename a file over a directory', act: () => rename(cur('file.txt'), cur('dir')), code: 'EISDIR' },
];

door('FUSE ops', table, async (row) => {
  const head = await m.store.head(PROJECT);
  const before = await tree(m.cur);
  reported.length = 0;
  await assert.rejects(row.act(m), (error: NodeJS.ErrnoException) => {
    assert.equal(error.code, row.code, `${row.name}: ${error.message}; the mount reported: ${reported.join('\n')}`);
    return true;
  });
  assert.equal(await m.store.head(PROJECT), head, 'no event recorded');
  assert.deepEqual(await tree(m.cur), before, 'the tree is unchanged');
  assert.deepEqual(await settled(), { openFiles: 0, writeBufferBytes: 0 }, 'no open file or write buffer left behind');
  assert.deepEqual(reported, [], 'nothing answered with EIO');
});

/** Races change the tree by design (one winner), so they are checked here rather than as rows. */
describe('adversarial: FUSE races', () => {
  it('O_CREAT|O_EXCL from 8 processes at once: one wins, seven get EEXIST, one event', async () => {
    const head = await m.store.head(PROJECT);
    const exclusive = `fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY)\n  os.write(fd, sys.argv[2].encode()); os.close(fd)`;
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) => py(exclusive, [cur('lockfile'), `owner-${i}`]).then(() => 'won', (error: { stderr?: string }) => (error.stderr ?? '').trim())),
    );
    assert.deepEqual([...outcomes].sort(), ['EEXIST', 'EEXIST', 'EEXIST', 'EEXIST', 'EEXIST', 'EEXIST', 'EEXIST', 'won']);
    const winner = outcomes.indexOf('won');
    assert.equal(await readFile(cur('lockfile'), 'utf8'), `owner-${winner}`);
    assert.equal(await m.store.head(PROJECT), head + 1, 'one event: the winner\'s file');
  });

  it('O_APPEND from 4 processes at once: every line lands whole, none overwritten', async () => {
    const append = `fd = os.open(sys.argv[1], os.O_CREAT | os.O_APPEND | os.O_WRONLY)\n  [os.write(fd, ('%s%03d\\n' % (sys.argv[2], i)).encode()) for i in range(100)]\n  os.close(fd)`;
    await Promise.all(['a', 'b', 'c', 'd'].map((writer) => py(append, [cur('appended.log'), writer])));
    const lines = (await readFile(cur('appended.log'), 'utf8')).split('\n').filter((line) => line !== '');
    assert.equal(lines.length, 400);
    for (const writer of ['a', 'b', 'c', 'd']) assert.deepEqual(lines.filter((l) => l.startsWith(writer)), Array.from({ length: 100 }, (_, i) => `${writer}${String(i).padStart(3, '0')}`));
    assert.deepEqual(await settled(), { openFiles: 0, writeBufferBytes: 0 });
  });
});
