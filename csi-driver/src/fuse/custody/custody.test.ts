import assert from 'node:assert/strict';
import { openSync, closeSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { Custody, custodyWith } from './custody.js';
import { Handover } from './handover.js';
import { ensureKeeper, KeeperClient } from './keeper.js';

const openDescriptors = (): number => readdirSync('/proc/self/fd').length;

describe('Custody.claim through a rolling upgrade', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('a put of the predecessor\'s descriptor that fails closes the duplicate and abandons the handover', async () => {
    const { dir, remove } = await tempDir('lhb-custody-claim-');
    cleanups.push(remove);
    // The predecessor's keeper: a real one, holding a descriptor under the mount's name. It exits a
    // second after the test drops that.
    const predecessor = await ensureKeeper(join(dir, 'old', 'keeper.sock'), 1, 60);
    const fd = openSync(dir, 'r');
    predecessor.put('mnt', fd, Buffer.from('{}'));
    closeSync(fd);
    cleanups.push(async () => predecessor.drop('mnt'));
    const handover = new Handover(predecessor, () => undefined);
    // Ours answers nothing, so the put of the duplicate fails (ENOENT).
    const ours = new KeeperClient(join(dir, 'ours', 'keeper.sock'), async () => undefined);

    const before = openDescriptors();
    assert.throws(() => Custody.claim(custodyWith(ours, join(dir, 'mounts'), 'mnt', handover)), { code: 'ENOENT' });
    assert.equal(openDescriptors(), before, 'the duplicate got from the predecessor is closed');
    assert.equal(handover.holds('mnt'), false, 'the handover no longer waits for this mount');
    assert.deepEqual(predecessor.list(), ['mnt'], 'the predecessor still holds the connection');
  });
});
