/**
 * Mount lifecycle on real FUSE: several mounts in one process, lazy unmount of a busy mount, dead
 * mounts left by a killed server, the CLI's SIGTERM path, and two processes sharing one real Redis.
 * Mounts served by this process are touched only through async fs.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { openStore } from '@lighthouse-bridge/core';
import { startRedis } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { custodyWith } from '../fuse/custody/custody.js';
import { ensureKeeper } from '../fuse/custody/keeper.js';
import { lazyUnmount, mountAt } from './mountpoint.js';
import { mountProject as mountProjectNow, MountpointBusyError, type MountOptions, type MountedProject } from './mountProject.js';
import { eventually } from '@lighthouse-bridge/test/eventually';

const CLI = fileURLToPath(new URL('../../../cli/dist/main.js', import.meta.url));
const WAIT_MS = 15_000;

interface CliMount {
  child: ChildProcess;
  ready: Promise<string>;
  exited: Promise<number | null>;
  stderr: () => string;
}

const children = new Set<ChildProcess>();
const cleanups: Array<() => Promise<void>> = [];
const mounts: MountedProject[] = [];
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  // Unmount before removing directories: rm must never walk into a live mount.
  for (const mounted of mounts) await mounted.unmount().catch(() => undefined);
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** The CLI's mount with its keeper in `cwd` (ADR 0083), or none with `--no-custody` (a kill -9 then leaves a dead mount). */
function cliMount(args: string[], cwd: string): CliMount {
  const custody = args.includes('--no-custody') ? [] : ['--custody-dir', join(cwd, 'custody')];
  const child = spawn(process.execPath, [CLI, 'mount', ...args, ...custody], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  const ready = withTimeout(
    new Promise<string>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      void exited.then((code) => reject(new Error(`mount exited with ${code} before it was ready: ${err}`)));
    }),
    'mount ready',
  );
  return { child, ready, exited, stderr: () => err };
}

function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]);
}

async function mountProject(options: MountOptions): Promise<MountedProject> {
  const mounted = await mountProjectNow(options);
  mounts.push(mounted);
  return mounted;
}

/** A scratch dir whose `mnt` is the dead mount of a CLI mount killed after recording `current/survivor.txt`. */
async function deadMountWithSurvivor(): Promise<string> {
  const dir = await scratch();
  const killed = cliMount(['demo', 'mnt', '--no-custody'], dir);
  await killed.ready;
  await writeFile(join(dir, 'mnt', 'current', 'survivor.txt'), 'still here');
  killed.child.kill('SIGKILL');
  await withTimeout(killed.exited, 'killed mount to exit');
  await assert.rejects(stat(join(dir, 'mnt')), { code: 'ENOTCONN' });
  return dir;
}

async function scratch(): Promise<string> {
  const tmp = await tempDir('lhb-mount-');
  cleanups.push(tmp.remove);
  return tmp.dir;
}

describe('mountProject lifecycle', { timeout: 120_000 }, () => {
  it('serves several projects from one process, each with its own tree', async () => {
    const dir = await scratch();
    const store = await openStore(`file://${join(dir, 'store')}`);
    const a = await mountProject({ store, project: { namespace: 'default', name: 'alpha' }, mountpoint: join(dir, 'a'), actor: 't' });
    const b = await mountProject({ store, project: { namespace: 'team', name: 'beta' }, mountpoint: join(dir, 'b'), actor: 't' });
    try {
      await writeFile(join(dir, 'a', 'current', 'who'), 'alpha');
      await writeFile(join(dir, 'b', 'current', 'who'), 'beta');
      assert.equal(await readFile(join(dir, 'a', 'current', 'who'), 'utf8'), 'alpha');
      assert.equal(await readFile(join(dir, 'b', 'current', 'who'), 'utf8'), 'beta');
      assert.equal(a.workspace.head, 1);
      assert.equal(b.workspace.head, 1);
      await assert.rejects(mountProject({ store, project: { namespace: 'default', name: 'alpha' }, mountpoint: join(dir, 'a'), actor: 't' }), MountpointBusyError);
    } finally {
      await a.unmount();
      await b.unmount();
      await store.close();
    }
    assert.equal(await mountAt(join(dir, 'a')), undefined);
    assert.equal(await mountAt(join(dir, 'b')), undefined);
  });

  it('a mount whose detached keeper exited while it started starts another one and is held by it', async () => {
    const dir = await scratch();
    const store = await openStore(`file://${join(dir, 'store')}`);
    const socket = join(dir, 'custody', 'keeper.sock');
    const keeper = await ensureKeeper(socket, 0.3, 60);
    const mountpoint = join(dir, 'mnt');
    // Idle past --idle-exit after the first look, as a long replay before the put would leave it.
    // Watched by its socket file: asking the keeper would start its idle time again.
    await eventually('the idle keeper to exit', () => !existsSync(socket));
    const mounted = await mountProject({ store, project: { namespace: 'default', name: 'kept' }, mountpoint, actor: 't', custody: custodyWith(keeper, join(dir, 'custody', 'mounts'), mountpoint) });
    try {
      assert.deepEqual(keeper.list(), [mountpoint]);
      await writeFile(join(mountpoint, 'current', 'f'), 'served');
      assert.equal(await readFile(join(mountpoint, 'current', 'f'), 'utf8'), 'served');
    } finally {
      await mounted.unmount();
      await store.close();
    }
    // Dropped at the unmount; the keeper may since have exited, idle, which also holds nothing.
    assert.equal(keeper.holds(mountpoint), false);
  });

  it('unmounts a busy mount lazily, recording what an open descriptor wrote', async () => {
    const dir = await scratch();
    const store = await openStore(`file://${join(dir, 'store')}`);
    const mounted = await mountProject({ store, project: { namespace: 'default', name: 'busy' }, mountpoint: join(dir, 'mnt'), actor: 't' });
    // The descriptor lives in a child: this process must hold none on its own mount while it
    // spawns (fusermount3), because exec closes inherited descriptors with a FLUSH only we can answer.
    const holdOpen = `const fs = require('node:fs'); const fd = fs.openSync(process.argv[1], 'w'); fs.writeSync(fd, 'kept'); console.log('ready'); setTimeout(() => fs.closeSync(fd), 60000);`;
    const holder = spawn(process.execPath, ['-e', holdOpen, join(dir, 'mnt', 'current', 'open.txt')], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(holder);
    await withTimeout(new Promise((resolve) => holder.stdout?.once('data', resolve)), 'holder to open the file');
    assert.equal(await store.head({ namespace: 'default', name: 'busy' }), 0, 'still open, so not recorded yet');
    await withTimeout(mounted.unmount(), 'unmount of a busy mount');
    assert.equal(await mountAt(join(dir, 'mnt')), undefined);
    holder.kill('SIGKILL');
    const events = await store.read({ namespace: 'default', name: 'busy' });
    assert.deepEqual(events.map((e) => e.type), ['FileWritten']);
    assert.equal(events[0]?.type === 'FileWritten' ? events[0].data.size : -1, 4);
    await store.close();
  });

  it('replaces a dead mount left by a killed server, keeping what it had recorded', async () => {
    const dir = await deadMountWithSurvivor();

    const store = await openStore(`file://${join(dir, '.lighthouse-bridge')}`);
    const mounted = await mountProject({ store, project: { namespace: 'default', name: 'demo' }, mountpoint: join(dir, 'mnt'), actor: 't' });
    try {
      assert.equal(await readFile(join(dir, 'mnt', 'current', 'survivor.txt'), 'utf8'), 'still here');
    } finally {
      await mounted.unmount();
      await store.close();
    }
  });

  it('lighthouse-bridge mount over a dead mount left by a killed one detaches it and serves what it had recorded', async () => {
    const dir = await deadMountWithSurvivor();

    const second = cliMount(['demo', 'mnt'], dir);
    await second.ready;
    assert.equal(await readFile(join(dir, 'mnt', 'current', 'survivor.txt'), 'utf8'), 'still here');
    second.child.kill('SIGTERM');
    assert.equal(await withTimeout(second.exited, 'mount to exit'), 0);
    assert.equal(await mountAt(join(dir, 'mnt')), undefined, 'nothing left mounted');
  });

  it('an empty file (created or truncated) is durable once close returns, even under kill -9', async () => {
    const dir = await scratch();
    const first = cliMount(['demo', 'mnt', '--no-custody'], dir);
    await first.ready;
    const cur = join(dir, 'mnt', 'current');
    const names = Array.from({ length: 8 }, (_, i) => i);
    for (const i of names) await writeFile(join(cur, `old${i}`), 'old bytes');
    // open(O_CREAT|O_TRUNC) then close, in another process; the mount is killed the moment it exits.
    await new Promise<void>((resolve, reject) => {
      const sh = spawn('sh', ['-c', names.map((i) => `: > new${i} && : > old${i}`).join(' && ')], { cwd: cur, stdio: 'ignore' });
      sh.on('exit', (code) => {
        first.child.kill('SIGKILL');
        if (code === 0) resolve();
        else reject(new Error(`sh exited with ${code}`));
      });
    });
    await withTimeout(first.exited, 'killed mount to exit');

    const store = await openStore(`file://${join(dir, '.lighthouse-bridge')}`);
    const mounted = await mountProject({ store, project: { namespace: 'default', name: 'demo' }, mountpoint: join(dir, 'mnt'), actor: 't' });
    try {
      for (const i of names) {
        assert.equal((await stat(join(cur, `new${i}`))).size, 0, `new${i} exists and is empty`);
        assert.equal(await readFile(join(cur, `old${i}`), 'utf8'), '', `old${i} was truncated`);
      }
    } finally {
      await mounted.unmount();
      await store.close();
    }
  });

  it('bounds the memory of files open for writing across the mount: ENOSPC past --write-buffer-mib, logged', async () => {
    const dir = await scratch();
    const cli = cliMount(['demo', 'mnt', '--write-buffer-mib', '128'], dir);
    await cli.ready;
    const cur = join(dir, 'mnt', 'current');
    // 16 files held open at once, each written one byte at 64 MiB - 1 (a 64 MiB sparse file), then all closed.
    const script = `
      const fs = require('node:fs');
      const fds = [], codes = [];
      for (let i = 0; i < 16; i++) {
        const fd = fs.openSync('sparse' + i, 'w');
        fds.push(fd);
        try { fs.writeSync(fd, 'x', 64 * 1024 * 1024 - 1); codes.push('ok'); } catch (e) { codes.push(e.code); }
      }
      for (const fd of fds) fs.closeSync(fd);
      process.stdout.write(JSON.stringify(codes));`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script], { cwd: cur, stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`writer exited with ${code}`))));
    });
    assert.deepEqual(JSON.parse(out), [...Array<string>(2).fill('ok'), ...Array<string>(14).fill('ENOSPC')]);
    const status = await readFile(`/proc/${cli.child.pid}/status`, 'utf8');
    const peakMiB = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
    assert.ok(peakMiB < 512, `peak resident ${peakMiB.toFixed(0)} MiB stays bounded (16 x 64 MiB unbounded)`);
    assert.match(cli.stderr(), /write buffers full: sparse\d+ needs \d+ more bytes, this mount holds \d+ of its 134217728/);
    // Closed files give their memory back: the next big file fits again.
    await writeFile(join(cur, 'after.bin'), Buffer.alloc(64 * 1024 * 1024 - 1, 1));
    cli.child.kill('SIGTERM');
    assert.equal(await withTimeout(cli.exited, 'mount to exit'), 0);
    const store = await openStore(`file://${join(dir, '.lighthouse-bridge')}`);
    try {
      const recorded = await store.read({ namespace: 'default', name: 'demo' });
      const sizes = recorded.map((e) => (e.type === 'FileWritten' ? `${e.data.path}:${e.data.size}` : e.type)).sort();
      assert.deepEqual(sizes.filter((s) => s.endsWith(':67108864') || s.startsWith('after')), ['after.bin:67108863', 'sparse0:67108864', 'sparse1:67108864']);
      process.stderr.write(`# write budget: peak resident ${peakMiB.toFixed(0)} MiB with 16 x 64 MiB sparse writes and a 128 MiB budget\n`);
    } finally {
      await store.close();
    }
  });

  it('the mount command unmounts and exits 0 on SIGTERM', async () => {
    const dir = await scratch();
    const cli = cliMount(['demo', 'mnt', '--actor', 'cli-test'], dir);
    const line = await cli.ready;
    assert.equal(line, `mounted default/demo at ${join(dir, 'mnt')} (embedded file://${join(dir, '.lighthouse-bridge')})`);
    await writeFile(join(dir, 'mnt', 'current', 'f.txt'), 'x');
    cli.child.kill('SIGTERM');
    assert.equal(await withTimeout(cli.exited, 'mount to exit after SIGTERM'), 0, cli.stderr());
    assert.equal(await mountAt(join(dir, 'mnt')), undefined);
    for (const line of cli.stderr().trim().split('\n')) JSON.parse(line);
  });

  it('the mount command serves FUSE operation metrics on --metrics-port', async () => {
    const dir = await scratch();
    const cli = cliMount(['demo', 'mnt', '--metrics-port', '0'], dir);
    await cli.ready;
    try {
      await writeFile(join(dir, 'mnt', 'current', 'm.txt'), 'x');
      await eventually('the mounted log line', async () => cli.stderr().includes('metricsPort'), WAIT_MS);
      const mountedLine = cli.stderr().split('\n').find((l) => l.includes('metricsPort')) ?? '{}';
      const { metricsPort } = JSON.parse(mountedLine) as { metricsPort: number };
      const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(body, /lighthouse_bridge_fuse_op_duration_seconds_count\{op="write",namespace="default",project="demo"\} [1-9]/);
      assert.match(body, /lighthouse_bridge_fuse_op_duration_seconds_count\{op="flush",namespace="default",project="demo"\} [1-9]/);
      assert.match(body, /lighthouse_bridge_store_append_duration_seconds_count\{backend="embedded",namespace="default",project="demo",outcome="ok"\} [1-9]/);
      assert.match(body, /lighthouse_bridge_events_appended_total\{backend="embedded"\} [1-9]/);
    } finally {
      cli.child.kill('SIGTERM');
      assert.equal(await withTimeout(cli.exited, 'mount to exit'), 0);
    }
  });

  it('the mount command answers /.bridge/validate with the speed layer: built-in rules, then --policy', async () => {
    const dir = await scratch();
    await writeFile(join(dir, 'policy.yaml'), 'rules:\n  - name: no-deploys\n    priority: 500\n    decision: deny\n    tools: [Bash]\n    match: { command: "^kubectl apply" }\n');
    const ask = async (mnt: string, request: object): Promise<{ decision: string; rule?: string; reason: string }> => {
      const handle = await open(join(dir, mnt, '.bridge', 'validate'), 'r+');
      try {
        await handle.write(`${JSON.stringify(request)}\n`);
        const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
        return JSON.parse(buffer.subarray(0, bytesRead).toString('utf8')) as { decision: string; rule?: string; reason: string };
      } finally {
        await handle.close();
      }
    };
    const builtIn = cliMount(['demo', 'mnt'], dir);
    await builtIn.ready;
    try {
      assert.equal((await ask('mnt', { agent: 'a1', tool: 'Bash', input: { command: 'rm -rf /' } })).decision, 'deny');
      assert.equal((await ask('mnt', { agent: 'a1', tool: 'Read', input: { file_path: join(dir, 'mnt', 'current', 'x') } })).decision, 'allow');
    } finally {
      builtIn.child.kill('SIGTERM');
      assert.equal(await withTimeout(builtIn.exited, 'mount to exit'), 0, builtIn.stderr());
    }
    const withPolicy = cliMount(['demo', 'mnt2', '--policy', join(dir, 'policy.yaml')], dir);
    await withPolicy.ready;
    try {
      const answer = await ask('mnt2', { agent: 'a1', tool: 'Bash', input: { command: 'kubectl apply -f x.yaml' } });
      assert.equal(answer.decision, 'deny');
      assert.equal(answer.rule, 'no-deploys');
    } finally {
      withPolicy.child.kill('SIGTERM');
      assert.equal(await withTimeout(withPolicy.exited, 'mount to exit'), 0, withPolicy.stderr());
    }
  });

  it('the mount command refuses a non-empty mountpoint with exit 2', async () => {
    const dir = await scratch();
    await mkdir(join(dir, 'full'));
    await writeFile(join(dir, 'full', 'file'), 'x');
    const cli = cliMount(['demo', 'full'], dir);
    cli.ready.catch(() => undefined);
    assert.equal(await withTimeout(cli.exited, 'refusal'), 2);
    assert.match(cli.stderr(), /not empty/);
  });

  it('the mount command takes --sync close (every change waits for the disk) and refuses any other mode with exit 2', async () => {
    const dir = await scratch();
    const bad = cliMount(['demo', 'bad', '--sync', 'sometimes'], dir);
    bad.ready.catch(() => undefined);
    assert.equal(await withTimeout(bad.exited, 'refusal'), 2);
    assert.match(bad.stderr(), /--sync expects fsync or close, got "sometimes"/);
    const strict = cliMount(['demo', 'mnt', '--sync', 'close', '--no-custody'], dir);
    await strict.ready;
    await writeFile(join(dir, 'mnt', 'current', 'strict.txt'), 'on disk at close');
    strict.child.kill('SIGKILL');
    await withTimeout(strict.exited, 'killed mount to exit');
    const store = await openStore(`file://${join(dir, '.lighthouse-bridge')}`, { readOnly: true });
    try {
      const [event] = await store.read({ namespace: 'default', name: 'demo' });
      assert.equal(event?.type === 'FileWritten' ? event.data.path : undefined, 'strict.txt');
    } finally {
      await store.close();
    }
    await lazyUnmount(join(dir, 'mnt'));
  });

  it('fsync through the mount returns only after the log file is fdatasync\'d; close does not wait for it', async () => {
    const dir = await scratch();
    const mounted = cliMount(['demo', 'mnt'], dir);
    await mounted.ready;
    // The mount's own syscalls, seen from outside: every thread, with each descriptor's path.
    const trace = join(dir, 'strace.txt');
    const strace = spawn('strace', ['-f', '-ttt', '-y', '-e', 'trace=fdatasync,fsync', '-o', trace, '-p', String(mounted.child.pid)], { stdio: 'ignore' });
    children.add(strace);
    await eventually('strace to attach', async () => (await stat(trace).catch(() => undefined)) !== undefined, WAIT_MS);
    // The project's first write takes the writer role (a durable step of its own); then the
    // background sync settles before the measured close.
    await writeFile(join(dir, 'mnt', 'current', 'first.txt'), 'first');
    await new Promise((settle) => setTimeout(settle, 300));
    const file = await open(join(dir, 'mnt', 'current', 'synced.txt'), 'w');
    await file.writeFile('made durable by fsync');
    const closeFrom = Date.now() / 1000;
    await file.close();
    const closeTo = Date.now() / 1000;
    const again = await open(join(dir, 'mnt', 'current', 'synced.txt'), 'r+');
    const fsyncFrom = Date.now() / 1000;
    await again.sync();
    const fsyncTo = Date.now() / 1000;
    await again.close();
    strace.kill('SIGINT');
    await once(strace, 'exit');
    children.delete(strace);
    const logSyncs = (await readFile(trace, 'utf8'))
      .split('\n')
      .filter((line) => /fdatasync\(\d+<[^>]*\.seg>\) = 0/.test(line))
      .map((line) => Number(line.split(/\s+/)[1]));
    const within = (from: number, to: number): boolean => logSyncs.some((at) => at >= from - 0.002 && at <= to + 0.002);
    assert.ok(within(fsyncFrom, fsyncTo), `no fdatasync of the log while fsync ran (${fsyncFrom}-${fsyncTo}); log syncs at ${logSyncs.join(', ')}`);
    assert.ok(!within(closeFrom, closeTo), `close waited for an fdatasync of the log (${closeFrom}-${closeTo}): ${logSyncs.join(', ')}`);
    mounted.child.kill('SIGTERM');
    await withTimeout(mounted.exited, 'mount to exit');
  });

  it('with Redis down: cached reads keep working, writes fail with EIO and are not recorded, then recover', async () => {
    const dir = await scratch();
    // Persistent, so the restarted server still has the project (a SIGKILL must not lose the log).
    const redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    cleanups.push(() => redis.stop());
    const cli = cliMount(['outage', 'mnt', '--store', redis.url], dir);
    await cli.ready;
    try {
      await writeFile(join(dir, 'mnt', 'current', 'cached.txt'), 'before the outage');
      await redis.kill();
      assert.equal(await readFile(join(dir, 'mnt', 'current', 'cached.txt'), 'utf8'), 'before the outage');
      await assert.rejects(withTimeout(writeFile(join(dir, 'mnt', 'current', 'lost.txt'), 'x'), 'write during outage'), { code: 'EIO' });
      await redis.restart();
      await eventually('writes to work again', async () => {
        await writeFile(join(dir, 'mnt', 'current', 'after.txt'), 'back');
        return true;
      });
      const log = (await readFile(join(dir, 'mnt', 'history', 'log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { data: { path?: string } });
      assert.ok(!log.some((e) => e.data.path === 'lost.txt'), 'the refused write is not in the log');
      assert.ok(log.some((e) => e.data.path === 'after.txt'));
    } finally {
      cli.child.kill('SIGTERM');
      assert.equal(await withTimeout(cli.exited, 'mount to exit'), 0);
    }
  });

  it('two processes on one Redis see each other\'s writes', async () => {
    const dir = await scratch();
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const a = cliMount(['shared', 'a', '--store', redis.url, '--actor', 'pod-a'], dir);
    const b = cliMount(['shared', 'b', '--store', redis.url, '--actor', 'pod-b'], dir);
    await Promise.all([a.ready, b.ready]);
    try {
      const written = Date.now();
      await writeFile(join(dir, 'a', 'current', 'from-a.txt'), 'hello from a');
      await eventually('a write on A to show on B', async () => (await readFile(join(dir, 'b', 'current', 'from-a.txt'), 'utf8')) === 'hello from a', WAIT_MS);
      // The budget is 100 ms (bench/fuse.mjs measures it); 1 s here still catches a kernel cache that never expires.
      assert.ok(Date.now() - written < 1000, `visible on B after ${Date.now() - written} ms`);
      await writeFile(join(dir, 'b', 'current', 'from-a.txt'), 'overwritten by b');
      await eventually('B overwrite to show on A', async () => (await readFile(join(dir, 'a', 'current', 'from-a.txt'), 'utf8')) === 'overwritten by b', WAIT_MS);
      await mkdir(join(dir, 'b', 'current', 'dir-b'));
      await eventually('B mkdir to show on A', async () => (await stat(join(dir, 'a', 'current', 'dir-b'))).isDirectory(), WAIT_MS);
      const log = (await readFile(join(dir, 'a', 'history', 'log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { actor: string });
      assert.deepEqual(log.map((e) => e.actor), ['pod-a', 'pod-b', 'pod-b']);
    } finally {
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
      assert.equal(await withTimeout(a.exited, 'A to exit'), 0);
      assert.equal(await withTimeout(b.exited, 'B to exit'), 0);
    }
  });
});
