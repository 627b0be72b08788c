#!/usr/bin/env node
/**
 * Sequential create+write 100 B+close through `lighthouse-bridge mount` (custody on, as by default)
 * on the embedded store and on a loopback Redis, each file with content of its own (fuse-probe
 * create-distinct), after a warm-up of 1,000 files; bindfs over tmpfs in the same run is the
 * baseline. What one close costs where nothing is batched. Each store twice: as `mount` runs by
 * default, and with --idle-v8-workers ("idle"), as the chart runs the node plugin (ADR 0096). Needs
 * root, gcc, bindfs, redis-server and a build (`make build`).
 *
 *   node bench/close-latency.mjs [--files 3000]
 *   node bench/close-latency.mjs --busy 2               # 2 busy-looping processes during each timed loop,
 *                                                       # in the mount's CPU cgroup (a busy desktop)
 *   node bench/close-latency.mjs --busy 2 --own-cgroup  # the mount and the busy ones each in a CPU cgroup
 *                                                       # of their own (pods on a node)
 */
import { execFile, spawn } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { startRedis } from '@lighthouse-bridge/test/redis';
import { mountCli, stopChild } from './cliMount.mjs';

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { files: { type: 'string', default: '3000' }, busy: { type: 'string', default: '0' }, 'own-cgroup': { type: 'boolean' } } });
const FILES = Number(values.files);
const BUSY = Number(values.busy);
const WARMUP = 1000;

const dir = await mkdtemp(join(tmpdir(), 'lhb-close-'));
const probe = join(dir, 'fuse-probe');
await run('gcc', ['-O2', '-o', probe, join(REPO, 'bench', 'fuse-probe.c')]);
const tmpfs = join(dir, 'tmpfs');
const bound = join(dir, 'bindfs');
await mkdir(tmpfs);
await mkdir(bound);
await run('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', tmpfs]);
await run('bindfs', [tmpfs, bound]);
const redis = await startRedis();

/** Where the CPU controller is mounted: cgroup v2's single tree, or v1's cpu hierarchy. */
async function cpuCgroupRoot() {
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' '));
  const v1 = mounts.find(([, , type, opts]) => type === 'cgroup' && opts.split(',').includes('cpu'));
  const v2 = mounts.find(([, , type]) => type === 'cgroup2');
  if (v1) return v1[1];
  if (v2) return v2[1];
  throw new Error('no CPU cgroup controller mounted');
}

const cgroups = [];
/** A fresh CPU cgroup, removed at the end (once its processes have exited); join(pid) moves a process in. */
async function cpuCgroup(name) {
  const path = join(await cpuCgroupRoot(), `${name}-${process.pid}`);
  await mkdir(path);
  cgroups.push(path);
  return { join: (pid) => appendFile(join(path, 'cgroup.procs'), `${pid}\n`) };
}
let busyCgroup;
/** The timed loop, with BUSY busy-looping processes running meanwhile (in a cgroup of their own with --own-cgroup). */
async function timed(root) {
  await mkdir(join(root, 'warm'));
  await mkdir(join(root, 'timed'));
  await run(probe, ['create-distinct', join(root, 'warm'), String(WARMUP)]);
  const busy = Array.from({ length: BUSY }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  try {
    if (values['own-cgroup']) {
      busyCgroup ??= await cpuCgroup('lhb-bench-busy');
      for (const b of busy) await busyCgroup.join(b.pid);
    }
    return JSON.parse((await run(probe, ['create-distinct', join(root, 'timed'), String(FILES)])).stdout);
  } finally {
    await Promise.all(busy.map((b) => new Promise((resolve) => b.once('exit', resolve).kill('SIGKILL'))));
  }
}

const line = (name, r, base) =>
  `${name.padEnd(13)} ${FILES} create+write 100 B+close: p50 ${r.p50_us.toFixed(1).padStart(7)} µs  p99 ${r.p99_us.toFixed(1).padStart(8)} µs  max ${(r.max_us / 1000).toFixed(1).padStart(7)} ms${base ? `  (p50 ${(r.p50_us / base.p50_us).toFixed(1)}x, p99 ${(r.p99_us / base.p99_us).toFixed(1)}x bindfs)` : ''}`;

if (BUSY > 0) console.log(`${BUSY} busy-looping processes during each timed loop${values['own-cgroup'] ? ', in a CPU cgroup of their own; each mount in another' : ', in the same CPU cgroup as the mount'}`);

try {
  const base = await timed(bound);
  console.log(line('bindfs', base));
  // Each store as `mount` runs by default, then as the chart runs the node plugin (ADR 0096); each
  // run a project of its own, so each starts empty.
  const runs = ['embedded', 'Redis'].flatMap((store) => [[store, []], [`${store} idle`, ['--idle-v8-workers']]]);
  for (const [name, extra] of runs) {
    const slug = name.toLowerCase().replace(' ', '-');
    const store = name.startsWith('Redis') ? redis.url : `file://${join(dir, 'store')}`;
    const mnt = join(dir, `mnt-${slug}`);
    await mkdir(mnt);
    const child = await mountCli([slug, mnt, '--store', store, '--custody-dir', join(dir, `custody-${slug}`), ...extra], REPO, []);
    try {
      if (values['own-cgroup']) await (await cpuCgroup(`lhb-bench-${slug}`)).join(child.pid);
      console.log(line(name, await timed(join(mnt, 'current')), base));
    } finally {
      await stopChild(child);
    }
  }
} finally {
  await redis.stop();
  for (const path of cgroups) await rmdir(path).catch(() => undefined);
  await run('fusermount', ['-uz', bound]).catch(() => undefined);
  await run('umount', ['-l', tmpfs]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
