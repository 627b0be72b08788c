#!/usr/bin/env node
/**
 * The speed layer through the filesystem (issue 4): one request written to `/.bridge/validate`
 * and the answer read back on the same descriptor, against the same request answered in-process
 * by the validator, in the same run. The mount runs as a `lighthouse-bridge mount` child process
 * on the embedded store; the requests come from this process with synchronous syscalls (safe: the
 * mount is served by another process), so no thread pool sits in the measured path.
 *
 *   node bench/validate-file.mjs [ROUNDS]       (after `make build`; root, /dev/fuse)
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(REPO, 'cli', 'dist', 'main.js');
const ROUNDS = Number(process.argv[2] ?? 5000);
// A new agent id per round: the per-agent rate limit (50/s) would otherwise answer instead of the
// cache. Rules here are not agent-scoped, so every round is still a decision-cache hit.
const request = (i) => ({ agent: `bench-${i}`, tool: 'Bash', input: { command: 'git status' } });

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const fmt = (us) => `${us.toFixed(1).padStart(7)} µs`;
function summary(label, samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  console.log(`${label.padEnd(34)} p50 ${fmt(pct(sorted, 50))}  p99 ${fmt(pct(sorted, 99))}`);
  return { p50: pct(sorted, 50), p99: pct(sorted, 99) };
}

async function inProcess() {
  const { createValidator } = await import('@lighthouse-bridge/core/speed-layer');
  const { createLogger } = await import('@lighthouse-bridge/core/observability');
  const v = await createValidator({ project: { namespace: 'default', name: 'bench' }, logger: createLogger('bench', { level: 'error' }) });
  const samples = [];
  for (let i = 0; i < ROUNDS + 500; i++) {
    const t0 = process.hrtime.bigint();
    const answer = await v.validate(request(i));
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    if (answer.decision !== 'allow') throw new Error(`unexpected answer ${JSON.stringify(answer)}`);
    if (i >= 500) samples.push(us);
  }
  await v.close();
  return samples;
}

async function throughMount(dir) {
  const child = spawn(process.execPath, [CLI, 'mount', 'bench', 'mnt', '--store', `file://${join(dir, 'store')}`], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, LHB_LOG_LEVEL: 'error' },
  });
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('exit', (code) => reject(new Error(`mount exited with ${code}`)));
  });
  const path = join(dir, 'mnt', '.bridge', 'validate');
  const answer = Buffer.alloc(4096);
  const samples = [];
  try {
    for (let i = 0; i < ROUNDS + 500; i++) {
      const t0 = process.hrtime.bigint();
      const fd = openSync(path, 'r+');
      writeSync(fd, `${JSON.stringify(request(i))}\n`);
      const n = readSync(fd, answer, 0, answer.length, 0);
      closeSync(fd);
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      if (!answer.subarray(0, n).toString().includes('"decision":"allow"')) throw new Error(`unexpected answer ${answer.subarray(0, n)}`);
      if (i >= 500) samples.push(us);
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  return samples;
}

const dir = await mkdtemp(join(tmpdir(), 'lhb-bench-validate-'));
try {
  console.log(`cached decision for ${JSON.stringify(request(0))}, ${ROUNDS} rounds after 500 warm-up:`);
  const base = summary('in-process validator.validate()', await inProcess());
  const file = summary('open+write+read+close validate', await throughMount(dir));
  console.log(`  through the mount vs in-process: p99 +${((file.p99 - base.p99) / 1000).toFixed(3)} ms; goal p99 < 2 ms: ${file.p99 < 2000 ? 'met' : 'NOT met'}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
