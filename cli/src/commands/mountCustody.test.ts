import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mountAt } from '@lighthouse-bridge/csi-driver';
import { percentile, restartDrill } from '@lighthouse-bridge/test/custodyDrill';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { join } from 'node:path';

const RESTARTS = 20;

describe('mount: a killed server is taken over by the same command (ADR 0083)', { timeout: 240_000 }, () => {
  let tmp: { dir: string; remove: () => Promise<void> };
  before(async () => {
    tmp = await tempDir('lhb-custody-');
  });
  after(() => tmp.remove());

  it(`keeps a program on a private bind of the mount running through ${RESTARTS} kill -9 and restarts, losing no acknowledged write`, async (t) => {
    const result = await restartDrill({ dir: tmp.dir, restarts: RESTARTS });
    const { reader } = result;
    t.diagnostic(`${reader.writes} writes; stall per restart p50 ${percentile(result.restarts.map((r) => r.stallMs), 50)} ms, max ${reader.maxGapMs} ms; takeover p50 ${percentile(result.restarts.map((r) => r.takeoverMs), 50)} ms`);
    assert.deepEqual(reader.errors, {}, `the program saw errors: ${result.readerErrors.join('; ')}`);
    assert.ok(result.allTookOver, 'every restart took the live mount over');
    assert.ok(reader.writes > RESTARTS * 10, `the program kept working (${reader.writes} writes)`);
    // Every write the program was told succeeded is in the file, in place.
    const lost: number[] = [];
    for (let i = 0; i < reader.writes; i++) {
      if (result.content.toString('latin1', i * 8, i * 8 + 8) !== `${String(i).padStart(7, '0')}\n`) lost.push(i);
    }
    assert.deepEqual(lost.slice(0, 10), [], `${lost.length} acknowledged writes missing`);
    assert.equal(result.content.length, reader.writes * 8);
    assert.equal(await mountAt(join(tmp.dir, 'mnt')), undefined, 'unmounted at the end');
  });
});
