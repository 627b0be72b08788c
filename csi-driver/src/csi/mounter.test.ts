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
  let delay = 0;
  // The real store, its appends held back: what a slow Redis does to a plugin that is stopping.
  const slow = Object.create(store, {
    append: { value: (...args: Parameters<EventStore['append']>) => sleep(delay).then(() => store.append(...args)) },
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
    delay = 300;
    await chmod(file, 0o755);
    assert.equal(await store.head(project), head, 'the chmod returned before its append');
    assert.equal(await mounter.settle(50), false, 'still queued at the deadline');
    assert.equal(await mounter.settle(5_000), true);
    const [event] = await store.read(project, { from: head + 1 });
    assert.deepEqual([event?.type, event?.data], ['AttributesChanged', { path: 'a.sh', mode: 0o755 }]);
    assert.equal(await mounter.settle(0), true, 'nothing queued: settled at once');
  } finally {
    delay = 0;
    await mounter.unmount(target);
    await store.close();
    await dir.remove();
  }
});
