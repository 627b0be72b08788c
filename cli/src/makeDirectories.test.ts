import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore, ProjectWorkspace, type EventStore } from '@lighthouse-bridge/core';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { makeDirectories, makeParents } from './makeDirectories.js';

describe('makeParents (put\'s missing parents; mkdir -p builds on it)', () => {
  let dir: { dir: string; remove(): Promise<void> };
  let store: EventStore;
  const project = { namespace: 'default', name: 'race' };
  before(async () => {
    dir = await tempDir('lhb-put-');
    store = await openStore(`file://${dir.dir}`);
  });
  after(async () => {
    await store.close();
    await dir.remove();
  });

  it('a parent another writer made after we looked is fine, as for mkdir -p; a file in its place is not', async () => {
    // Two puts side by side: each loaded the project before the other wrote (a crash test hit this).
    const stale = await ProjectWorkspace.open({ store, project, actor: 'a', live: false });
    const other = await ProjectWorkspace.open({ store, project, actor: 'b', live: false });
    try {
      await other.execute({ type: 'MakeDirectory', path: 'r4' });
      await makeParents(stale, 'r4/sub/f0');
      assert.equal(stale.lookup('r4/sub')?.kind, 'directory');
      // mkdir -p of a directory another writer made after we looked: fine too.
      await other.execute({ type: 'MakeDirectory', path: 'm' });
      await other.execute({ type: 'MakeDirectory', path: 'm/n' });
      await makeDirectories(stale, 'm/n');
      assert.equal(stale.lookup('m/n')?.kind, 'directory');
      await other.catchUp();
      await other.writeFile('plain', Buffer.from('a file, not a directory'));
      await assert.rejects(makeParents(stale, 'plain/f1'), /plain (already exists|is not a directory)/);
    } finally {
      await stale.close();
      await other.close();
    }
  });
});
