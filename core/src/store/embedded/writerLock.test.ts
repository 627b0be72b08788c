import { tempDir } from '@lighthouse-bridge/test/tmp';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { StoreUnavailableError } from '../eventStore.js';
import { acquireWriterLock } from './writerLock.js';

describe('embedded store writer lock', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let lock: string;
  beforeEach(async () => {
    ({ dir, remove } = await tempDir('lhb-writer-lock-'));
    lock = join(dir, 'writer.lock');
  });
  afterEach(() => remove());

  const ourPidNs = () => readlink('/proc/self/ns/pid');
  const host = encodeURIComponent(hostname());

  it('records pid, host and pid namespace, and removes its own lock on release', async () => {
    const held = await acquireWriterLock(lock, 'demo');
    assert.equal(await readFile(lock, 'utf8'), `${process.pid} host=${host} pidns=${await ourPidNs()}\n`);
    await held.release();
    await assert.rejects(stat(lock), { code: 'ENOENT' });
  });

  it('takes over a lock of a dead pid on our host and in our pid namespace', async () => {
    await writeFile(lock, `${await deadPid()} host=${host} pidns=${await ourPidNs()}\n`);
    const held = await acquireWriterLock(lock, 'demo');
    assert.match(await readFile(lock, 'utf8'), new RegExp(`^${process.pid} `));
    await held.release();
  });

  it('still reads an old lock holding a bare pid, and takes it over when that pid is dead', async () => {
    await writeFile(lock, `${await deadPid()}\n`);
    const held = await acquireWriterLock(lock, 'demo');
    assert.match(await readFile(lock, 'utf8'), new RegExp(`^${process.pid} `));
    await held.release();
  });

  it('never takes over a lock from another pid namespace or host, whatever its pid looks like here', async () => {
    const dead = await deadPid();
    for (const foreign of [`${dead} host=${host} pidns=pid:[1]\n`, `${dead} host=elsewhere pidns=${await ourPidNs()}\n`]) {
      await writeFile(lock, foreign);
      await assert.rejects(acquireWriterLock(lock, 'demo'), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        assert.match(error.message, /open for writing by pid \d+ on host .* in pid namespace .*if that writer is gone, delete .*writer\.lock/);
        return true;
      });
      assert.equal(await readFile(lock, 'utf8'), foreign, 'the foreign lock was touched');
    }
  });

  it('does not take over a lock naming our own pid: another store or thread of this process holds it', async () => {
    const ours = `${process.pid} host=${host} pidns=${await ourPidNs()}\n`;
    await writeFile(lock, ours);
    await assert.rejects(acquireWriterLock(lock, 'demo'), /open for writing by pid \d+.*delete/);
    assert.equal(await readFile(lock, 'utf8'), ours);
  });

  it('a writer in a new pid namespace (unshare -pf) does not take over our live lock', async (t) => {
    if (!(await canUnshare())) return t.skip('unshare -pf is not permitted here');
    const held = await acquireWriterLock(lock, 'demo');
    try {
      const before = await readFile(lock, 'utf8');
      // In the child's namespace our pid does not exist (ESRCH), which used to make the lock look stale.
      const child = `
        import { acquireWriterLock } from ${JSON.stringify(new URL('./writerLock.js', import.meta.url).href)};
        try { await acquireWriterLock(${JSON.stringify(lock)}, 'demo'); console.log('taken over'); }
        catch (error) { console.log(error.message); }`;
      const { stdout } = await promisify(execFile)('timeout', ['20', 'unshare', '-pf', process.execPath, '--input-type=module', '-e', child]);
      assert.match(stdout, /open for writing by pid \d+ on host .* in pid namespace/);
      assert.equal(await readFile(lock, 'utf8'), before);
    } finally {
      await held.release();
    }
  });
});

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

async function canUnshare(): Promise<boolean> {
  try {
    await promisify(execFile)('timeout', ['5', 'unshare', '-pf', 'true']);
    return true;
  } catch {
    return false;
  }
}
