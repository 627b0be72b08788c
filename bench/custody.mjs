#!/usr/bin/env node
/**
 * Custody bench (issue 10, ADR 0083): how long a program using a mount pauses when the server is
 * killed (kill -9) and the same `lighthouse-bridge mount` command takes the live mount over. Runs the
 * drill the test runs (test/src/custodyDrill.ts: a program on a private bind of the mount loops
 * pwrite/pread/fstat) for RESTARTS kills, on the embedded store and on a loopback Redis, and prints
 * the stall and the takeover time (kill -> the successor's "mounted" line), p50/p99. The baseline
 * in the same run is the program's own longest pause with no kill at all. Needs root, python3,
 * unshare, redis-server and a build (`make build`).
 *
 *   node bench/custody.mjs [RESTARTS]     # default 20
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile, restartDrill } from '../test/dist/custodyDrill.js';
import { startRedis } from '../test/dist/redis.js';

const RESTARTS = Number(process.argv[2] ?? 20);
const fmt = (values) => `p50 ${percentile(values, 50).toFixed(0).padStart(5)} ms  p99 ${percentile(values, 99).toFixed(0).padStart(5)} ms`;

async function drill(label, restarts, mountArgs) {
  const dir = await mkdtemp(join(tmpdir(), 'lhb-bench-custody-'));
  try {
    const result = await restartDrill({ dir, restarts, ...(mountArgs ? { mountArgs } : {}) });
    const errors = Object.entries(result.reader.errors).map(([k, v]) => `${k}x${v}`).join(' ') || 'none';
    const lost = result.content.length === result.reader.writes * 8 ? 0 : 'SOME';
    console.log(`${label.padEnd(28)} writes ${String(result.reader.writes).padStart(6)}  errors ${errors}  lost ${lost}  longest pause ${result.reader.maxGapMs.toFixed(1)} ms`);
    if (restarts > 0) {
      console.log(`${''.padEnd(28)} stall    ${fmt(result.restarts.map((r) => r.stallMs))}`);
      console.log(`${''.padEnd(28)} takeover ${fmt(result.restarts.map((r) => r.takeoverMs))}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await drill('embedded, no kill (baseline)', 0);
await drill(`embedded, ${RESTARTS} x kill -9`, RESTARTS);
const redis = await startRedis();
try {
  await drill(`redis, ${RESTARTS} x kill -9`, RESTARTS, ['--store', redis.url]);
} finally {
  await redis.stop();
}
