#!/usr/bin/env node
/**
 * Sequential create+write 100 B+close through `lighthouse-bridge mount` (custody on, as by default)
 * on the embedded store and on a loopback Redis, each file with content of its own (fuse-probe
 * create-distinct); bindfs over tmpfs in the same run, with the same sequence, is the baseline. What
 * one close costs where nothing is batched, timed in two windows of one process's life (ADR 0097):
 * - tier-up: creates 1,001-4,000, while V8 still compiles the hot functions (each concurrent compile
 *   takes a CPU that the mount's thread or the caller is then woken onto);
 * - steady: creates 20,001-23,000, once the compiles have stopped; what a node plugin answers once
 *   it has served as many.
 * Needs root, gcc, bindfs, redis-server and a build (`make build`).
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
/** Creates before each timed window, counted from the mount's start. */
const WINDOWS = [
  ['tier-up', 1000],
  ['steady', 20000],
];
// The steady window's warm-up must have at least one create of its own.
const MAX_FILES = WINDOWS[1][1] - WINDOWS[0][1] - 1;
if (!Number.isInteger(FILES) || FILES < 1 || FILES > MAX_FILES) throw new Error(`--files must be a whole number from 1 to ${MAX_FILES}, not ${values.files}`);
if (!Number.isInteger(BUSY) || BUSY < 0) throw new Error(`--busy must be a whole number, not ${values.busy}`);
console.log(`${FILES} sequential create+write 100 B+close per window, each file content no other has`);

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

/** FILES creates in `into`, contents numbered from `first`, with BUSY busy-looping processes running meanwhile. */
async function timed(into, first) {
  const busy = Array.from({ length: BUSY }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  try {
    return JSON.parse((await run(probe, ['create-distinct', into, String(FILES), String(first)])).stdout);
  } finally {
    await Promise.all(busy.map((b) => new Promise((resolve) => b.once('exit', resolve).kill('SIGKILL'))));
  }
}

/**
 * Each window's figures: untimed creates up to its start, then the timed ones. Contents are numbered
 * across the whole sequence, so no create stores content the store already holds.
 */
async function windows(root) {
  const results = [];
  let done = 0;
  for (const [name, start] of WINDOWS) {
    const warm = join(root, `before-${name}`);
    await mkdir(warm);
    await run(probe, ['create-distinct', warm, String(start - done), String(done)]);
    const into = join(root, name);
    await mkdir(into);
    results.push(await timed(into, start));
    done = start + FILES;
  }
  return results;
}

const line = (name, [window, start], r, base) =>
  `${name.padEnd(9)} ${`${window} (creates ${start + 1}-${start + FILES}):`.padEnd(32)} p50 ${r.p50_us.toFixed(1).padStart(7)} µs  p99 ${r.p99_us.toFixed(1).padStart(8)} µs  max ${(r.max_us / 1000).toFixed(1).padStart(7)} ms${base ? `  (p50 ${(r.p50_us / base.p50_us).toFixed(1)}x, p99 ${(r.p99_us / base.p99_us).toFixed(1)}x bindfs)` : ''}`;
const print = (name, results, base) => WINDOWS.forEach((w, i) => console.log(line(name, w, results[i], base?.[i])));

if (BUSY > 0) console.log(`${BUSY} busy-looping processes during each timed loop`);

try {
  const base = await windows(bound);
  print('bindfs', base);
  for (const [name, store] of [['embedded', `file://${join(dir, 'store')}`], ['Redis', redis.url]]) {
    const mnt = join(dir, `mnt-${name}`);
    await mkdir(mnt);
    const child = await mountCli(['demo', mnt, '--store', store, '--custody-dir', join(dir, `custody-${name}`)], REPO, []);
    try {
      print(name, await windows(join(mnt, 'current')), base);
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
