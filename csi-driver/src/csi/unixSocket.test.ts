import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from '@grpc/grpc-js';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { accepts } from '@lighthouse-bridge/test/csiPlugin';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { serveOnUnixSocket } from './unixSocket.js';

test('a plugin stopping after its successor took the socket over (maxSurge) leaves the successor serving', async (t) => {
  const dir = await tempDir('lhb-sock-');
  t.after(dir.remove);
  const path = join(dir.dir, 'csi.sock');
  const old = await serveOnUnixSocket(new Server(), path);
  const oldIno = (await lstat(path)).ino;
  const successor = await serveOnUnixSocket(new Server(), path);
  let successorOpen = true;
  t.after(() => (successorOpen ? successor.close() : undefined));
  const newIno = (await lstat(path)).ino;
  assert.notEqual(newIno, oldIno, 'the successor bound a socket of its own');
  await old.close();
  assert.equal((await lstat(path)).ino, newIno, 'the old plugin left the path alone');
  assert.ok(await accepts(path), 'the successor still answers');
  successorOpen = false;
  await successor.close();
  await assert.rejects(lstat(path), { code: 'ENOENT' });
  assert.deepEqual(await readdir(dir.dir), [], 'no staging name left behind');
});

test('a file that is not a socket is never replaced', async (t) => {
  const dir = await tempDir('lhb-sock-');
  t.after(dir.remove);
  const path = join(dir.dir, 'csi.sock');
  await writeFile(path, 'not ours');
  await assert.rejects(serveOnUnixSocket(new Server(), path), /exists and is not a socket/);
  assert.equal(await readFile(path, 'utf8'), 'not ours');
});
