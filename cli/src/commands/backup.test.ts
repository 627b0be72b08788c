import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubeToolsAvailable, startKube, type KubeEnv } from '@lighthouse-bridge/test/kube';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { resourcePath } from '@lighthouse-bridge/operator';
import { ensureNamespace, installBridgeProjectCrd, kubeFor } from '@lighthouse-bridge/operator/testing';

const CLI = fileURLToPath(new URL('../main.js', import.meta.url));
// The archive format and `export` are built alongside (issue 15); until they are here, every export fails.
const EXPORT_PRESENT = existsSync(fileURLToPath(new URL('./export.js', import.meta.url)));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const { LHB_REDIS_URL: _drop, LHB_STORE: _store, ...rest } = process.env;
    execFile(process.execPath, [CLI, ...args], { env: rest, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('lighthouse-bridge backup (arguments)', () => {
  it('refuses a missing --to, a bad --keep and a missing Redis URL (exit 2)', async () => {
    assert.match((await cli(['backup', '--keep', '2', '--redis', 'redis://127.0.0.1:1'])).stderr, /--to DIR is required/);
    for (const keep of ['0', '1.5', 'all', '']) {
      const { code, stderr } = await cli(['backup', '--to', '/nonexistent', '--keep', keep, '--redis', 'redis://127.0.0.1:1']);
      assert.equal(code, 2, keep);
      assert.match(stderr, /--keep needs a whole number of at least 1/);
    }
    assert.equal((await cli(['backup', '--to', '/nonexistent', '--keep', '1'])).code, 2);
  });
});

describe('lighthouse-bridge backup against a real kube-apiserver and Redis', { skip: kubeToolsAvailable() ? false : 'kube-apiserver not built' }, () => {
  let env: KubeEnv;
  let redis: RedisServer;
  let dir: string;
  const old = ['20240101T000000Z.lhb', '20250101T000000Z.lhb', '20250601T000000Z.lhb'];

  before(async () => {
    [env, redis] = await Promise.all([startKube(), startRedis()]);
    const kube = await kubeFor(env.kubeconfig);
    await installBridgeProjectCrd(kube);
    for (const [ns, name] of [['team-a', 'alpha'], ['team-b', 'beta']] as const) {
      await ensureNamespace(kube, ns);
      await kube.create(resourcePath(ns), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name }, spec: {} });
    }
    dir = await mkdtemp(join(tmpdir(), 'lhb-backup-'));
    await mkdir(join(dir, 'team-a/alpha'), { recursive: true });
    for (const name of [...old, '20250701T000000Z.lhb.partial']) await writeFile(join(dir, 'team-a/alpha', name), 'earlier');
  });
  after(async () => {
    await Promise.all([env?.stop(), redis?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('tries every project, keeps the newest N complete archives, and fails the run if any export failed', async () => {
    const notes = join(dir, 'notes.md');
    await writeFile(notes, '# kept across a restore\n');
    assert.equal((await cli(['put', 'team-a/alpha', 'notes.md', '--from', notes, '--store', redis.url])).code, 0);
    const { code, stdout, stderr } = await cli(['backup', '--to', dir, '--keep', '2', '--redis', redis.url, '--kubeconfig', env.kubeconfig]);
    const alpha = (await readdir(join(dir, 'team-a/alpha'))).sort();
    if (EXPORT_PRESENT) {
      assert.equal(code, 0, stderr);
      assert.match(stdout, /2 projects, all backed up/);
      assert.equal(alpha.length, 2);
      assert.equal(alpha[0], old[2]);
      assert.match(alpha[1] ?? '', /^\d{8}T\d{6}Z\.lhb$/);
      assert.equal((await readdir(join(dir, 'team-b/beta'))).length, 1);
      // The archive is a restorable backup: imported into another project, the file reads back.
      const archive = join(dir, 'team-a/alpha', alpha[1] ?? '');
      const imported = await cli(['import', 'team-c/copy', '--from', archive, '--store', redis.url]);
      assert.equal(imported.code, 0, imported.stderr);
      assert.equal((await cli(['cat', 'team-c/copy', 'notes.md', '--store', redis.url])).stdout, '# kept across a restore\n');
    } else {
      assert.equal(code, 1);
      // The first project's failure did not stop the second.
      assert.match(stderr, /team-a\/alpha: export exited 2; older archives kept/);
      assert.match(stderr, /team-b\/beta: export exited 2; older archives kept/);
      assert.match(stdout, /2 projects, some failed/);
      assert.deepEqual(alpha, old, 'nothing pruned after a failed export; no partial archive left');
      assert.deepEqual(await readdir(join(dir, 'team-b/beta')), []);
    }
  });
});
