#!/usr/bin/env node
/**
 * Sequential create+write 100 B+close through `lighthouse-bridge mount` (custody on, as by default)
 * on the embedded store and on a loopback Redis, each file with content of its own (fuse-probe
 * create-distinct), after a warm-up of 1,000 files; bindfs over tmpfs in the same run is the
 * baseline. What one close costs where nothing is batched. Needs root, gcc, bindfs, redis-server
 * and a build (`make build`).
 *
 *   node bench/close-latency.mjs [--files 3000]
 *   node bench/close-latency.mjs --busy 2   # 2 busy-looping processes during each timed loop: the
 *                                           # tail on a node with no CPU to spare (ADR 0096)
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { startRedis } from '@lighthouse-bridge/test/redis';
import { mountCli, stopChild } from './cliMount.mjs';

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { files: { type: 'string', default: '3000' }, busy: { type: 'string', default: '0' } } });
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

/** The timed loop, with BUSY busy-looping processes running meanwhile. */
async function timed(root) {
  await mkdir(join(root, 'warm'));
  await mkdir(join(root, 'timed'));
  await run(probe, ['create-distinct', join(root, 'warm'), String(WARMUP)]);
  const busy = Array.from({ length: BUSY }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  try {
    return JSON.parse((await run(probe, ['create-distinct', join(root, 'timed'), String(FILES)])).stdout);
  } finally {
    await Promise.all(busy.map((b) => new Promise((resolve) => b.once('exit', resolve).kill('SIGKILL'))));
  }
}

const line = (name, r, base) =>
  `${name.padEnd(9)} ${FILES} create+write 100 B+close: p50 ${r.p50_us.toFixed(1).padStart(7)} µs  p99 ${r.p99_us.toFixed(1).padStart(8)} µs  max ${(r.max_us / 1000).toFixed(1).padStart(7)} ms${base ? `  (p50 ${(r.p50_us / base.p50_us).toFixed(1)}x, p99 ${(r.p99_us / base.p99_us).toFixed(1)}x bindfs)` : ''}`;

if (BUSY > 0) console.log(`${BUSY} busy-looping processes during each timed loop`);

try {
  const base = await timed(bound);
  console.log(line('bindfs', base));
  for (const [name, store] of [['embedded', `file://${join(dir, 'store')}`], ['Redis', redis.url]]) {
    const mnt = join(dir, `mnt-${name}`);
    await mkdir(mnt);
    const child = await mountCli(['demo', mnt, '--store', store, '--custody-dir', join(dir, `custody-${name}`)], REPO, []);
    try {
      console.log(line(name, await timed(join(mnt, 'current')), base));
    } finally {
      await stopChild(child);
    }
  }
} finally {
  await redis.stop();
  await run('fusermount', ['-uz', bound]).catch(() => undefined);
  await run('umount', ['-l', tmpfs]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
