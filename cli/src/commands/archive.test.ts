/**
 * `export` and `import` as users run them (the BUILT CLI): files, pipes, exit codes, and an
 * export taken from a project mounted and written to by another process.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStore } from '@lighthouse-bridge/core';
import { lazyUnmount, mountAt } from '@lighthouse-bridge/csi-driver';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const ENV = { ...process.env, LHB_STORE: '', LHB_ACTOR: '', LHB_LOG_LEVEL: 'error' };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], stdin: 'ignore' | 'pipe' | NodeJS.ReadableStream = 'ignore'): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [MAIN, ...args], { env: ENV, stdio: [typeof stdin === 'string' ? stdin : 'pipe', 'pipe', 'pipe'] });
  if (typeof stdin !== 'string') stdin.pipe(child.stdin!);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lighthouse-bridge ${args.join(' ')} did not finish`));
    }, 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, done };
}

const cli = (...args: string[]): Promise<Run> => start(args).done;

async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

let tmp: { dir: string; remove: () => Promise<void> };
let redis: RedisServer;
let embedded: string;
before(async () => {
  tmp = await tempDir('lhb-cli-archive-');
  redis = await startRedis();
  embedded = `file://${join(tmp.dir, 'store')}`;
});
after(async () => {
  await redis.stop();
  await tmp.remove();
});

describe('export and import', { timeout: 120_000 }, () => {
  it('moves a project from the embedded store to Redis through a file and through a pipe, the log unchanged', async () => {
    for (let i = 0; i < 30; i++) await ok('put', 'laptop', `src/f${i % 7}.txt`, '--from', MAIN, '--store', embedded);
    await ok('mv', 'laptop', 'src/f1.txt', 'src/g.txt', '--store', embedded);
    const file = join(tmp.dir, 'laptop.lhb');
    const source = await ok('log', 'laptop', '--json', '--store', embedded);
    const head = source.split('\n').length - 1;
    assert.match(await ok('export', 'laptop', '--to', file, '--store', embedded), new RegExp(`^exported default/laptop events 1-${head} and 1 blobs \\(\\d+ bytes\\) to .*laptop\\.lhb\n$`));
    assert.equal(await ok('import', 'team/laptop', '--from', file, '--store', redis.url), `imported ${head} events and 1 blobs into team/laptop; its head is event ${head}\n`);
    assert.equal(await ok('log', 'team/laptop', '--json', '--store', redis.url), source);
    assert.equal(await ok('cat', 'team/laptop', 'src/g.txt', '--store', redis.url), await readFile(MAIN, 'latin1'));

    const exporter = start(['export', 'team/laptop', '--store', redis.url]);
    const importer = start(['import', 'piped', '--from', '-', '--store', `file://${join(tmp.dir, 'piped')}`], exporter.child.stdout!);
    const [exported, imported] = await Promise.all([exporter.done, importer.done]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stderr, '', 'no progress when stderr is not a terminal');
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(await ok('log', 'piped', '--json', '--store', `file://${join(tmp.dir, 'piped')}`), source);
  });

  it('exits 1 for a non-empty target, a tampered or truncated archive, and leaves the target as it was', async () => {
    for (let i = 0; i < 5; i++) await ok('put', 'src', `f${i}`, '--from', MAIN, '--store', embedded);
    const file = join(tmp.dir, 'src.lhb');
    await ok('export', 'src', '--to', file, '--store', embedded);
    const archive = await readFile(file);
    await ok('put', 'busy', 'keep.txt', '--from', MAIN, '--store', redis.url);
    const busy = await ok('log', 'busy', '--json', '--store', redis.url);

    const nonEmpty = await cli('import', 'busy', '--from', file, '--store', redis.url);
    assert.equal(nonEmpty.code, 1);
    assert.match(nonEmpty.stderr, /^lighthouse-bridge import: default\/busy is not empty \(its head is event 1\): import only into an empty project, or append \(--append\) an archive that starts at event 2\n$/);
    const notContinuing = await cli('import', 'busy', '--from', file, '--append', '--store', redis.url);
    assert.equal(notContinuing.code, 1);
    assert.match(notContinuing.stderr, /event 1 of the archive is not event 1 of default\/busy: an appended archive must start at event 2, or repeat the project's own events before it/);

    const tampered = Buffer.from(archive);
    tampered[archive.indexOf('\nE ') + 90]! ^= 0x20;
    await writeFile(join(tmp.dir, 'tampered.lhb'), tampered);
    await writeFile(join(tmp.dir, 'truncated.lhb'), archive.subarray(0, archive.length - 40));
    for (const [name, message] of [
      ['tampered.lhb', /archive tampered: the sha256 of the E record at byte \d+ does not match its content/],
      ['truncated.lhb', /archive truncated at byte \d+/],
    ] as const) {
      const r = await cli('import', 'fresh', '--from', join(tmp.dir, name), '--store', redis.url);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
    }
    assert.equal(await ok('log', 'busy', '--json', '--store', redis.url), busy);
    assert.equal(await ok('log', 'fresh', '--json', '--store', redis.url), '');

    // --append: the rest of a project onto a copy of its beginning.
    await ok('export', 'src', '--to', join(tmp.dir, 'head.lhb'), '--to-seq', '3', '--store', embedded);
    await ok('export', 'src', '--to', join(tmp.dir, 'rest.lhb'), '--from', '4', '--store', embedded);
    await ok('import', 'copy', '--from', join(tmp.dir, 'head.lhb'), '--store', redis.url);
    assert.match(await ok('import', 'copy', '--from', join(tmp.dir, 'rest.lhb'), '--append', '--store', redis.url), /imported 2 events .* head is event 5/);
    assert.equal(await ok('log', 'copy', '--json', '--store', redis.url), await ok('log', 'src', '--json', '--store', embedded));
  });

  it('exits 2 for usage errors and 3 for an unreachable store', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['import', 'x', '--store', embedded], 2, /missing --from FILE/],
      [['import', 'x', '--from', join(tmp.dir, 'nope.lhb'), '--store', embedded], 2, /cannot read .*nope\.lhb: ENOENT/],
      [['export', 'x', '--from', '5', '--to-seq', '2', '--store', embedded], 2, /--from 5 is past --to-seq 2/],
      [['export', 'x', '--from', 'one', '--store', embedded], 2, /--from expects a sequence number/],
      [['export', 'x', '--to', join(tmp.dir, 'x.lhb'), '--store', 'redis://127.0.0.1:1'], 3, /store unavailable/],
      [['import', 'x', '--from', MAIN, '--store', 'redis://127.0.0.1:1'], 3, /store unavailable/],
      [['import', 'x', '--from', MAIN, '--store', embedded], 1, /not a lighthouse-bridge archive/],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    await assert.rejects(readFile(join(tmp.dir, 'x.lhb')), /ENOENT/, 'a failed export leaves no file');
    await assert.rejects(readFile(join(tmp.dir, 'x.lhb.partial')), /ENOENT/);
  });

  it('exports a consistent prefix of a project mounted and being written by another process', async () => {
    const url = `file://${join(tmp.dir, 'live')}`;
    const mnt = join(tmp.dir, 'mnt');
    await mkdir(mnt);
    const mount = start(['mount', 'live', mnt, '--store', url]);
    try {
      await new Promise<void>((resolve, reject) => {
        mount.child.stdout!.on('data', (d: Buffer) => (d.toString().includes('mounted') ? resolve() : undefined));
        void mount.done.then((r) => reject(new Error(`mount exited: ${r.stderr}`)));
      });
      let writing = true;
      let written = 0;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          if (i % 10 === 0) await mkdir(join(mnt, 'current', `d${i}`));
          await writeFile(join(mnt, 'current', `d${i - (i % 10)}`, `f${i}.txt`), `content ${i}\n`.repeat(1 + (i % 50)));
          written++;
        }
      })();
      const reader = await openStore(url, { readOnly: true });
      const archives: Array<{ file: string; headBefore: number; headAfter: number }> = [];
      try {
        while (written < 20) await new Promise((r) => setTimeout(r, 20));
        for (let k = 0; k < 3; k++) {
          const file = join(tmp.dir, `live-${k}.lhb`);
          const headBefore = await reader.head({ namespace: 'default', name: 'live' });
          await ok('export', 'live', '--to', file, '--store', url);
          archives.push({ file, headBefore, headAfter: await reader.head({ namespace: 'default', name: 'live' }) });
        }
      } finally {
        writing = false;
        await writer;
        await reader.close();
      }
      mount.child.kill('SIGTERM');
      assert.equal((await mount.done).code, 0);
      const source = (await ok('log', 'live', '--json', '--store', url)).split('\n');
      for (const [k, { file, headBefore, headAfter }] of archives.entries()) {
        const copy = `file://${join(tmp.dir, `live-copy-${k}`)}`;
        await ok('import', 'live', '--from', file, '--store', copy);
        const events = (await ok('log', 'live', '--json', '--store', copy)).split('\n').slice(0, -1);
        assert.ok(events.length >= headBefore && events.length <= headAfter, `archive ${k} holds ${events.length} events, taken between heads ${headBefore} and ${headAfter}`);
        assert.deepEqual(events, source.slice(0, events.length));
      }
      assert.ok(archives[2]!.headBefore > archives[0]!.headBefore, 'the project grew while it was exported');
    } finally {
      // SIGTERM unmounts; a server killed while mounted would leave a mount that rm walks into.
      mount.child.kill('SIGTERM');
      await Promise.race([mount.done, new Promise((r) => setTimeout(r, 5000))]);
      if (await mountAt(mnt)) await lazyUnmount(mnt);
      mount.child.kill('SIGKILL');
    }
  });
});
