import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore, parseProjectId, type EventStore } from '@lighthouse-bridge/core';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { FuseMounter } from './mounter.js';

test('settle waits until a chmod that already returned is in the store, and gives up at its deadline', { timeout: 60_000 }, async () => {
  const dir = await tempDir('lhb-mounter-');
  const store = await openStore(`file://${join(dir.dir, 'store')}`);
  let gate: Promise<void> | undefined;
  let release = (): void => {};
  // The real store, its appends held back until released: a slow Redis under a stopping plugin.
  const slow = Object.create(store, {
    append: { value: (...args: Parameters<EventStore['append']>) => (gate ?? Promise.resolve()).then(() => store.append(...args)) },
  }) as EventStore;
  const mounter = new FuseMounter(slow);
  const project = parseProjectId('team/settle');
  const target = join(dir.dir, 'volume');
  await mkdir(target);
  try {
    await mounter.mount({ project, target, readOnly: false, actor: 'node:test' });
    const file = join(target, 'current', 'a.sh');
    await writeFile(file, 'echo a\n');
    const head = await store.head(project);
    gate = new Promise<void>((r) => (release = r));
    await chmod(file, 0o755);
    assert.equal(await store.head(project), head, 'the chmod returned before its append');
    assert.equal(await mounter.settle(50), false, 'still queued at the deadline');
    const settled = mounter.settle(5_000);
    await sleep(50);
    release();
    assert.equal(await settled, true);
    const [event] = await store.read(project, { from: head + 1 });
    assert.deepEqual([event?.type, event?.data], ['AttributesChanged', { path: 'a.sh', mode: 0o755 }]);
    assert.equal(await mounter.settle(0), true, 'nothing queued: settled at once');
  } finally {
    release();
    await mounter.unmount(target);
    await store.close();
    await dir.remove();
  }
});
