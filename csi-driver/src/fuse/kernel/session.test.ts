import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import type { FuseStat } from '../attributes.js';
import type { BridgeFs } from '../bridgeFs.js';
import { E, fsError } from '../errno.js';
import { mountKernel, type KernelMount } from './mount.js';

/**
 * The session against the real kernel, over a small fixed tree (a fake filesystem: the mount's own
 * tests, bridgeFs.test, cover the real one). What only the kernel can tell: that it counts the
 * names a READDIRPLUS lists as we do, so its FORGETs leave no node behind.
 */
describe('FuseSession against the kernel: READDIRPLUS', { timeout: 60_000 }, () => {
  const NAMES = Array.from({ length: 300 }, (_, i) => `entry-${i}`);
  let dir: string;
  let remove: () => Promise<void>;
  let mounted: KernelMount;

  before(async () => {
    ({ dir, remove } = await tempDir('lhb-session-'));
    await mkdir(join(dir, 'mnt'));
    const stat = (mode: number, size: number): FuseStat => ({ mode, size, mtime: 0, atime: 0, ctime: 0, uid: 0, gid: 0, nlink: 1 });
    const getattr = (path: string): FuseStat => {
      if (path === '/') return stat(0o40755, 0);
      const i = NAMES.indexOf(path.slice(1));
      if (i < 0) throw fsError(E.ENOENT, `${path} does not exist`);
      return stat(0o100644, i);
    };
    const fs = { readdir: (path: string) => (path === '/' ? NAMES : []), getattr, getattrAtHand: getattr } as unknown as BridgeFs;
    mounted = await mountKernel(join(dir, 'mnt'), {
      fs,
      project: { namespace: 'unit', name: 'session-kernel' },
      cache: { entry: 60, attr: 60, negative: 0 },
      report: (op, error) => assert.fail(`${op}: ${String(error)}`),
    });
  });

  after(async () => {
    await mounted?.unmount();
    await remove();
  });

  it('lists names the kernel then knows without a LOOKUP, and its FORGETs drop every one of them', async () => {
    const mnt = join(dir, 'mnt');
    // Names only (libuv sorts them): nothing here looks a name up, so every node is the listing's.
    // READDIRPLUS_AUTO: the first request of a listing is the plus form, later ones only where
    // lookups followed.
    assert.deepEqual(await readdir(mnt), [...NAMES].sort());
    const listed = mounted.session.nodes.size - 1;
    assert.ok(listed >= 25 && listed <= NAMES.length, `${listed} nodes from the listing (its first request at least)`);
    for (const [i, name] of NAMES.entries()) assert.equal((await lstat(join(mnt, name))).size, i);
    assert.equal(mounted.session.nodes.size, NAMES.length + 1, 'a node for every name, and the root');

    // Dentries and inodes dropped: the kernel forgets each node as often as it learned it.
    await writeFile('/proc/sys/vm/drop_caches', '2');
    const deadline = Date.now() + 10_000;
    while (mounted.session.nodes.size > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(mounted.session.nodes.size, 1, 'only the root is left');
  });
});
