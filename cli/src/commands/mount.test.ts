import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { lazyUnmount, mountAt } from '@lighthouse-bridge/csi-driver';
import { tempDir } from '@lighthouse-bridge/test/tmp';

const run = promisify(execFile);
/** The BUILT CLI, run as users run it. */
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

describe('mount', { timeout: 60_000 }, () => {
  let tmp: { dir: string; remove: () => Promise<void> };
  let taken: Server;
  before(async () => {
    tmp = await tempDir('lhb-cli-mount-');
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    await new Promise((resolve) => taken.close(resolve));
    await tmp.remove();
  });

  it('unmounts again when the metrics port cannot be served', async () => {
    const mnt = join(tmp.dir, 'mnt');
    const port = (taken.address() as { port: number }).port;
    try {
      const failed = await run(process.execPath, [MAIN, 'mount', 'default/metrics-taken', mnt, '--store', `file://${join(tmp.dir, 'store')}`, '--metrics-port', String(port)], {
        env: { ...process.env, LHB_STORE: '', LHB_ACTOR: '', LHB_LOG_LEVEL: 'error' },
        timeout: 30_000,
      }).then(
        () => ({ code: 0, stderr: '' }),
        (error: { code: number; stderr: string }) => error,
      );
      assert.notEqual(failed.code, 0, 'the command fails');
      assert.match(failed.stderr, /EADDRINUSE/);
      assert.equal(await mountAt(mnt), undefined, 'no mount left behind');
    } finally {
      if (await mountAt(mnt)) await lazyUnmount(mnt);
    }
  });
});
