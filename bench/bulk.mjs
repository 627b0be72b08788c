#!/usr/bin/env node
/**
 * Bulk workloads (issue 11): what agents run in their workspace — git clone, git status, cp -a,
 * tar x, a package manager writing many small files, rm -rf, rsync -a — timed on a mount of the
 * built CLI (embedded store, then a loopback redis-server) and, in the same run and just before
 * each, on bindfs (a C libfuse passthrough) over a local directory on the same disk. For each
 * workload on the mount it also reports where the time goes: the FUSE operations it caused (from
 * the mount's /metrics), their summed time in JavaScript, the store appends and the events recorded.
 * Needs root, bindfs, git, rsync, tar, redis-server, and a build (`make build`).
 *
 *   node bench/bulk.mjs                          # full size: 1,000-file repository, 10,000 small files
 *   node bench/bulk.mjs --repo-files 200 --small-files 1000 --timeout 60   # quick run
 *   node bench/bulk.mjs --rounds 3               # each workload 3 times per store, alternating with bindfs;
 *                                                # the table shows medians (bindfs here varies ±50% run to run)
 *   node bench/bulk.mjs --sync-close             # also the embedded store with `mount --sync close`
 *   node bench/bulk.mjs --no-custody             # also the embedded store with `mount --no-custody`
 *                                                # (no keeper, journal or write mirrors: ADR 0083's cost)
 *   node bench/bulk.mjs --strace                 # also count the workloads' syscalls (strace -f -c -w;
 *                                                # slows the mount side: read its times from a run without)
 *   TMPDIR=/dev/shm node bench/bulk.mjs          # both sides on tmpfs: bindfs over ext4 swung 1.2-7.6 s
 *                                                # for the package write with the disk's state; on tmpfs the
 *                                                # ratio is the mount's own cost
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { mountCli, stopChild } from './cliMount.mjs';
import { freePort } from '@lighthouse-bridge/test/ports';
import { startRedis } from '@lighthouse-bridge/test/redis';

const run = promisify(execFile);
const { values: flags } = parseArgs({
  options: {
    'repo-files': { type: 'string', default: '1000' },
    'small-files': { type: 'string', default: '10000' },
    timeout: { type: 'string', default: '120' },
    rounds: { type: 'string', default: '1' },
    'sync-close': { type: 'boolean', default: false },
    'no-custody': { type: 'boolean', default: false },
    strace: { type: 'boolean', default: false },
  },
});
const REPO_FILES = Number(flags['repo-files']);
const SMALL_FILES = Number(flags['small-files']);
const TIMEOUT_MS = Number(flags.timeout) * 1000;
const ROUNDS = Number(flags.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`--rounds must be a whole number of at least 1, not ${flags.rounds}`);
// RELEASE is asynchronous: give the kernel's last requests time to reach the mount before scraping.
const SETTLE_MS = 300;
const PROJECT = 'bulk';

const children = [];
const cleanups = [];

/** Files of a source tree: FANOUT directories of FANOUT directories, sizes 200 B to ~6 KiB. */
function sourceFiles(n) {
  const files = [];
  for (let i = 0; i < n; i++) {
    const path = join(`mod${i % 10}`, `part${Math.floor(i / 10) % 10}`, `file${i}.ts`);
    files.push([path, `// file ${i}\n` + 'export const value = "lorem ipsum dolor sit amet";\n'.repeat(4 + (i % 120))]);
  }
  return files;
}

/** Files as a package manager lays them out: packages of 50 files, each in nested lib/ directories. */
function packageFiles(n) {
  const files = [];
  for (let i = 0; i < n; i++) {
    const pkg = `node_modules/pkg${Math.floor(i / 50)}`;
    const k = i % 50;
    const path = k === 0 ? join(pkg, 'package.json') : join(pkg, 'lib', `sub${k % 7}`, `m${k}.js`);
    files.push([path, k === 0 ? `{"name":"pkg${Math.floor(i / 50)}","version":"1.0.${i}"}\n` : `module.exports = ${i};\n`.repeat(1 + (k % 8))]);
  }
  return files;
}

async function writeTree(root, files) {
  for (const [path, content] of files) {
    await mkdir(join(root, dirname(path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

// The package-manager workload: a separate node process writing the files 8 at a time, as npm's and
// pnpm's extractors overlap their writes.
const WRITER = `
const { mkdir, writeFile } = require('node:fs/promises');
const { dirname, join } = require('node:path');
const [root, list] = [process.argv[1], JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'))];
let next = 0;
async function worker() {
  while (next < list.length) {
    const [path, content] = list[next++];
    await mkdir(join(root, dirname(path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}
Promise.all(Array.from({ length: 8 }, worker)).catch((e) => { console.error(e); process.exit(1); });
`;

/** Runs one workload command; resolves with its seconds, or with a reason when it failed or ran over. */
async function timed(cmd, args, cwd) {
  if (cleaning) return { skipped: 'stopping' };
  const t0 = performance.now();
  try {
    await run(cmd, args, { cwd, timeout: TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 64 << 20 });
    return { seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    const over = e.killed || e.signal === 'SIGKILL';
    return { skipped: over ? `over ${TIMEOUT_MS / 1000} s, killed` : `failed: ${String(e.stderr || e.message).trim().split('\n')[0]}` };
  }
}

/**
 * Sums the mount's FUSE op histogram by op, and the store-append histogram (which times both event
 * appends and blob puts), from one /metrics scrape.
 */
async function scrape(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const ops = {};
  let appends = 0;
  for (const line of text.split('\n')) {
    let m = /^lighthouse_bridge_fuse_op_duration_seconds_(count|sum)\{[^}]*op="([^"]+)"[^}]*\} ([\d.e+-]+)$/.exec(line);
    if (m) {
      const o = (ops[m[2]] ??= { count: 0, sum: 0 });
      o[m[1]] += Number(m[3]);
      continue;
    }
    m = /^lighthouse_bridge_store_append_duration_seconds_count\{[^}]*\} ([\d.e+-]+)$/.exec(line);
    if (m) appends += Number(m[1]);
  }
  return { ops, appends };
}

const head = async (mnt) => JSON.parse(await readFile(join(mnt, '.bridge', 'status'), 'utf8')).head;

function workloads(fx, root) {
  // Each entry: name, command, args, cwd, and the earlier workload it needs.
  return [
    ['git clone', 'git', ['clone', '-q', '--no-hardlinks', fx.repo, join(root, 'clone')], root],
    ['git status', 'git', ['status', '--porcelain'], join(root, 'clone'), 'git clone'],
    ['cp -a', 'cp', ['-a', fx.src, join(root, 'cp')], root],
    ['tar x', 'tar', ['xf', fx.srcTar, '-C', root], root],
    [`write ${SMALL_FILES} files`, process.execPath, ['-e', WRITER, join(root, 'pkg'), fx.pkgList], root],
    [`rm -rf ${SMALL_FILES} files`, 'rm', ['-rf', join(root, 'pkg')], root, `write ${SMALL_FILES} files`],
    [`rsync -a ${SMALL_FILES} files`, 'rsync', ['-a', `${fx.pkg}/`, join(root, 'rsync')], root],
  ];
}

/**
 * Every workload ROUNDS times, each round in directories of its own; a row's times are the medians
 * of its rounds (the lower middle one for an even count; its FUSE ops those of the first round),
 * with each round's ratio beside them. Later rounds run on a project that holds the earlier
 * rounds' files, as a workspace in use does.
 */
async function runStore(label, fx, bindRoot, mnt, metricsPort) {
  await mkdir(bindRoot);
  const rounds = [];
  for (let r = 1; r <= ROUNDS; r++) rounds.push(await runRound(`${label}${ROUNDS > 1 ? ` ${r}/${ROUNDS}` : ''}`, fx, join(bindRoot, `r${r}`), mnt, `r${r}`, metricsPort));
  if (ROUNDS === 1) return rounds[0];
  const median = (values) => values.sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
  return rounds[0].map((first, i) => {
    const side = (name) => {
      const seconds = rounds.map((rows) => rows[i][name].seconds);
      return seconds.every((x) => x !== undefined) ? { seconds: median(seconds) } : first[name];
    };
    const ratios = rounds.map((rows) => (rows[i].bindfs.seconds && rows[i].mount.seconds ? rows[i].mount.seconds / rows[i].bindfs.seconds : NaN));
    return { ...first, bindfs: side('bindfs'), mount: side('mount'), ratios };
  });
}

async function runRound(label, fx, bindRoot, mnt, sub, metricsPort) {
  await mkdir(bindRoot);
  await mkdir(join(mnt, 'current', sub));
  const base = workloads(fx, bindRoot);
  const ours = workloads(fx, join(mnt, 'current', sub));
  const rows = [];
  const done = { bindfs: new Set(), mount: new Set() };
  for (let i = 0; i < base.length; i++) {
    const [name, , , , needs] = base[i];
    const row = { name };
    for (const [side, list] of [['bindfs', base], ['mount', ours]]) {
      const [, cmd, args, cwd] = list[i];
      if (needs && !done[side].has(needs)) {
        row[side] = { skipped: `needs ${needs}` };
        continue;
      }
      let before;
      if (side === 'mount') before = { head: await head(mnt), ...(await scrape(metricsPort)) };
      const traced = side === 'mount' && flags.strace ? join(fx.dir, `strace-${label}-${i}.txt`) : undefined;
      row[side] = traced ? await timed('strace', ['-f', '-c', '-w', '-o', traced, cmd, ...args], cwd) : await timed(cmd, args, cwd);
      if (traced && row[side].seconds !== undefined) row.syscalls = await syscallTotals(traced);
      if (row[side].seconds !== undefined) done[side].add(name);
      if (side === 'mount') {
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        const after = await scrape(metricsPort);
        const ops = {};
        for (const [op, v] of Object.entries(after.ops)) {
          const b = before.ops[op] ?? { count: 0, sum: 0 };
          if (v.count > b.count) ops[op] = { count: v.count - b.count, sum: v.sum - b.sum };
        }
        row.ops = ops;
        row.appends = after.appends - before.appends;
        row.events = (await head(mnt)) - before.head;
      }
    }
    const line = (r) => (r.seconds !== undefined ? `${r.seconds.toFixed(2)} s` : `SKIPPED (${r.skipped})`);
    console.log(`  [${label}] ${name.padEnd(22)} bindfs ${line(row.bindfs)}   mount ${line(row.mount)}`);
    rows.push(row);
  }
  return rows;
}

/** The `total` line of `strace -c -w`: calls, and wall seconds spent inside them. */
async function syscallTotals(path) {
  const total = (await readFile(path, 'utf8')).split('\n').find((l) => /\btotal$/.test(l.trim()));
  const fields = total?.trim().split(/\s+/) ?? [];
  return { calls: Number(fields[3]), seconds: Number(fields[1]) };
}

const cell = (r) => (r.seconds !== undefined ? r.seconds.toFixed(2) : 'skipped');
const ratioOf = (row) => {
  if (row.bindfs.seconds === undefined || row.mount.seconds === undefined) return '-';
  const each = row.ratios ? ` (rounds ${row.ratios.map((r) => (Number.isNaN(r) ? 'skipped' : `${r.toFixed(1)}x`)).join(', ')})` : '';
  return `${(row.mount.seconds / row.bindfs.seconds).toFixed(1)}x${each}`;
};

function printTables(results) {
  console.log(`\n| workload | ${results.map((r) => `bindfs s | ${r.label} s | ratio`).join(' | ')} |`);
  console.log(`|---|${results.map(() => '---|---|---|').join('')}`);
  for (let i = 0; i < results[0].rows.length; i++) {
    const cells = results.map(({ rows }) => `${cell(rows[i].bindfs)} | ${cell(rows[i].mount)} | ${ratioOf(rows[i])}`);
    console.log(`| ${results[0].rows[i].name} | ${cells.join(' | ')} |`);
  }
  console.log('\nWhere the time goes on the mount (FUSE ops answered in JS, their summed JS time (overlapping ops add up), store calls = appends + blob puts, events recorded):');
  console.log('| workload | store | FUSE ops | JS time s | store calls | events | top ops (count) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const { label, rows } of results) {
    for (const row of rows) {
      if (!row.ops) continue;
      const entries = Object.entries(row.ops).sort((a, b) => b[1].count - a[1].count);
      const total = entries.reduce((s, [, v]) => s + v.count, 0);
      const js = entries.reduce((s, [, v]) => s + v.sum, 0);
      const top = entries.slice(0, 6).map(([op, v]) => `${op} ${v.count}`).join(', ');
      console.log(`| ${row.name} | ${label} | ${total} | ${js.toFixed(2)} | ${row.appends} | ${row.events} | ${top} |`);
    }
  }
  if (!flags.strace) return;
  console.log('\nSyscalls of each workload on the mount (strace -f -c -w), and the FUSE round trips into JavaScript they caused:');
  console.log('| workload | store | syscalls | in syscalls s | FUSE ops | ops per syscall | JS time s |');
  console.log('|---|---|---|---|---|---|---|');
  for (const { label, rows } of results) {
    for (const row of rows) {
      if (!row.syscalls || !row.ops) continue;
      const ops = Object.values(row.ops).reduce((s, v) => s + v.count, 0);
      const js = Object.values(row.ops).reduce((s, v) => s + v.sum, 0);
      console.log(`| ${row.name} | ${label} | ${row.syscalls.calls} | ${row.syscalls.seconds.toFixed(2)} | ${ops} | ${(ops / row.syscalls.calls).toFixed(2)} | ${js.toFixed(2)} |`);
    }
  }
}

async function fixtures(dir) {
  const src = join(dir, 'src');
  await writeTree(src, sourceFiles(REPO_FILES));
  const srcTar = join(dir, 'src.tar');
  await run('tar', ['cf', srcTar, '-C', dir, 'src']);
  const repo = join(dir, 'repo');
  await writeTree(repo, sourceFiles(REPO_FILES));
  const git = (...args) => run('git', ['-C', repo, ...args], { maxBuffer: 64 << 20 });
  await git('init', '-q');
  await git('add', '-A');
  await git('-c', 'user.name=bench', '-c', 'user.email=bench@localhost', 'commit', '-q', '-m', 'generated');
  const files = packageFiles(SMALL_FILES);
  const pkg = join(dir, 'pkg');
  await writeTree(pkg, files);
  const pkgList = join(dir, 'pkg.json');
  await writeFile(pkgList, JSON.stringify(files));
  return { dir, src, srcTar, repo, pkg, pkgList };
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'lhb-bench-bulk-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  console.log(`bulk workloads: repository and source tree of ${REPO_FILES} files, ${SMALL_FILES} small files; timeout ${TIMEOUT_MS / 1000} s per workload`);
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const fx = await fixtures(dir);

  const plain = join(dir, 'plain');
  const bound = join(dir, 'bindfs');
  await mkdir(plain);
  await mkdir(bound);
  await run('bindfs', [plain, bound]);
  cleanups.push(() => run('fusermount', ['-uz', bound]));

  const redis = await startRedis();
  cleanups.push(() => redis.stop());

  const results = [];
  const stores = [['embedded', `file://${join(dir, 'store')}`, []], ['Redis', redis.url, []]];
  if (flags['sync-close']) stores.push(['sync=close', `file://${join(dir, 'store-strict')}`, ['--sync', 'close']]);
  if (flags['no-custody']) stores.push(['no custody', `file://${join(dir, 'store-uncustodied')}`, ['--no-custody']]);
  for (const [label, store, extra] of stores) {
    const mnt = join(dir, `mnt-${label}`);
    const port = await freePort();
    const child = await mountCli([PROJECT, mnt, '--store', store, '--metrics-port', String(port), ...extra], dir, children);
    cleanups.push(() => run('fusermount', ['-uz', mnt]).catch(() => undefined));
    results.push({ label, rows: await runStore(label, fx, join(bound, label), mnt, port) });
    await stopChild(child);
  }
  printTables(results);
  console.log(`\nload average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

// One cleanup, however it is reached (the end of main, an error, or a signal while a workload runs).
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    await Promise.all(children.map(stopChild));
    for (let c = cleanups.pop(); c; c = cleanups.pop()) await c().catch(() => undefined);
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  // `on`, not `once`: the test harness's own signal hook (test/src/owned.ts) re-raises the signal when no
  // listener is left, which would kill this process before its mounts are gone.
  process.on(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });
}
try {
  await main();
} finally {
  await cleanup();
}
