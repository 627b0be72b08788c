#!/usr/bin/env node
/**
 * Custody bench (issue 10, ADR 0083): how long a program using a mount pauses when the server is
 * killed (kill -9) and the same `lighthouse-bridge mount` command takes the live mount over. Runs the
 * drill the test runs (test/src/custodyDrill.ts: a program on a private bind of the mount loops
 * pwrite/pread/fstat) for RESTARTS kills, on the embedded store and on a loopback Redis, and prints
 * the stall and the takeover time (kill -> the successor's "mounted" line), p50/p99. Then the same
 * program on a volume the CSI node plugin published, through RESTARTS rolling upgrades as the chart
 * runs them (a second plugin under a successor keeper takes the mount over and retires the first,
 * whose keeper then exits): the stall and the plugin's retire time, p50/p99. The baseline in the
 * same run is the program's own longest pause with no kill at all. Needs root, python3, unshare,
 * redis-server and a build (`make build`).
 *
 *   node bench/custody.mjs [RESTARTS]     # default 20
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadCsiPackage } from '../csi-driver/dist/csi/proto.js';
import { keeperPath } from '../csi-driver/dist/fuse/kernel/native.js';
import { csiClients, startPlugin } from '../test/dist/csiPlugin.js';
import { missingRecords, percentile, restartDrill, startProgram } from '../test/dist/custodyDrill.js';
import { eventually } from '../test/dist/eventually.js';
import { detachAllUnder } from '../test/dist/mounts.js';
import { startRedis } from '../test/dist/redis.js';

const RESTARTS = Number(process.argv[2] ?? 20);
const fmt = (values) => `p50 ${percentile(values, 50).toFixed(0).padStart(5)} ms  p99 ${percentile(values, 99).toFixed(0).padStart(5)} ms`;

async function drill(label, restarts, mountArgs) {
  const dir = await mkdtemp(join(tmpdir(), 'lhb-bench-custody-'));
  try {
    const result = await restartDrill({ dir, restarts, ...(mountArgs ? { mountArgs } : {}) });
    const errors = Object.entries(result.reader.errors).map(([k, v]) => `${k}x${v}`).join(' ') || 'none';
    const lost = missingRecords(result.content, result.reader.writes).length;
    console.log(`${label.padEnd(28)} writes ${String(result.reader.writes).padStart(6)}  errors ${errors}  lost ${lost}  longest pause ${result.reader.maxGapMs.toFixed(1)} ms`);
    if (restarts > 0) {
      console.log(`${''.padEnd(28)} stall    ${fmt(result.restarts.map((r) => r.stallMs))}`);
      console.log(`${''.padEnd(28)} takeover ${fmt(result.restarts.map((r) => r.takeoverMs))}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The first match of `pattern` in the plugin's output, once it is there. */
const logged = (plugin, pattern) => eventually(`the plugin to log ${pattern}`, () => pattern.exec(plugin.output()), 30_000, 5);

async function upgrades(label, rounds, store) {
  const dir = await mkdtemp(join(tmpdir(), 'lhb-bench-upgrade-'));
  const stateDir = join(dir, 'state');
  const socket = join(dir, 'csi.sock');
  const underKeeper = () => startPlugin({ socket, stateDir, store, supervisor: [keeperPath, '--socket', join(stateDir, 'keeper.sock'), '--'] });
  const target = join(dir, 'pods', 'p', 'volume');
  const priv = join(dir, 'private');
  await mkdir(priv, { recursive: true });
  let plugin = await underKeeper();
  let program;
  try {
    const csi = csiClients(loadCsiPackage().grpcObject, socket);
    const capability = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
    await csi.call('Node', 'NodePublishVolume', { volume_id: 'bench/upgrade', target_path: target, volume_capability: capability, volume_context: {} });
    csi.close();
    program = await startProgram(target, priv, 'drill.log');
    const stalls = [];
    const retires = [];
    for (let n = 0; n < rounds; n++) {
      await sleep(300);
      const began = Date.now();
      const next = await underKeeper();
      const [, ms] = await logged(next, /"message":"predecessor retired".*?"ms":(\d+)/);
      await logged(next, /took over the live mount/);
      await plugin.kill('SIGTERM');
      await logged(next, /now serving/);
      plugin = next;
      await sleep(100);
      stalls.push(Math.max(0, ...program.gaps.filter((g) => g.endMs >= began).map((g) => g.ms)));
      retires.push(Number(ms));
    }
    const report = await program.stop();
    const errors = Object.entries(report.errors).map(([k, v]) => `${k}x${v}`).join(' ') || 'none';
    const lost = missingRecords(await readFile(join(target, 'current', 'drill.log')), report.writes).length;
    console.log(`${label.padEnd(28)} writes ${String(report.writes).padStart(6)}  errors ${errors}  lost ${lost}  longest pause ${report.maxGapMs.toFixed(1)} ms`);
    console.log(`${''.padEnd(28)} stall    ${fmt(stalls)}`);
    console.log(`${''.padEnd(28)} retire   ${fmt(retires)}`);
  } finally {
    program?.kill();
    await plugin.kill('SIGTERM');
    await detachAllUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

await drill('embedded, no kill (baseline)', 0);
await drill(`embedded, ${RESTARTS} x kill -9`, RESTARTS);
const redis = await startRedis();
try {
  await drill(`redis, ${RESTARTS} x kill -9`, RESTARTS, ['--store', redis.url]);
  await upgrades(`node plugin, ${RESTARTS} upgrades`, RESTARTS, redis.url);
} finally {
  await redis.stop();
}
