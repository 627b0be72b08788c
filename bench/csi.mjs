// NodePublishVolume latency and node-plugin memory, against bindfs (a C FUSE mount) in the same run.
// Usage: node bench/csi.mjs [--mounts N]   (after `npx tsc -b csi-driver test cli`; root, /dev/fuse, redis-server)
// Publishes N ephemeral volumes of one project to N targets through the spawned plugin over Redis,
// keeps them all mounted, and reads the plugin's RSS before and after; then kills the plugin with -9
// and times a restart that remounts them all, against a restart with nothing to recover.
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { startRedis } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { loadCsiPackage } from '@lighthouse-bridge/csi-driver/csi';
import { csiClients, startPlugin } from '@lighthouse-bridge/test/csiPlugin';
import { detachAllUnder } from '@lighthouse-bridge/test/mounts';

const { values } = parseArgs({ options: { mounts: { type: 'string', default: '100' } } });
const N = Number(values.mounts);
const run = promisify(execFile);

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const summary = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: percentile(s, 0.5), p99: percentile(s, 0.99) };
};
const rssMb = async (pid) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

const redis = await startRedis();
const dir = await tempDir('lhb-bench-csi-');
let plugin;
let csi;
try {
  // Baseline: mounting a C FUSE filesystem (bindfs) at a fresh directory, N times.
  const source = join(dir.dir, 'bindfs-source');
  await mkdir(source);
  const baseline = [];
  for (let i = 0; i < N; i++) {
    const target = join(dir.dir, 'bindfs', `t${i}`);
    await mkdir(target, { recursive: true });
    const start = performance.now();
    await run('bindfs', [source, target]);
    baseline.push(performance.now() - start);
  }
  await detachAllUnder(join(dir.dir, 'bindfs'));

  plugin = await startPlugin({ socket: join(dir.dir, 'csi.sock'), stateDir: join(dir.dir, 'state'), store: redis.url });
  csi = csiClients(loadCsiPackage().grpcObject, plugin.socket);
  await new Promise((r) => setTimeout(r, 1000));
  const idleRss = await rssMb(plugin.child.pid);
  const context = {
    project: 'bench',
    'csi.storage.k8s.io/ephemeral': 'true',
    'csi.storage.k8s.io/pod.namespace': 'team',
    'csi.storage.k8s.io/pod.name': 'agent',
    'csi.storage.k8s.io/serviceAccount.name': 'agent',
  };
  const publish = [];
  for (let i = 0; i < N; i++) {
    const start = performance.now();
    await csi.call('Node', 'NodePublishVolume', {
      volume_id: `csi-bench-${i}`,
      target_path: join(dir.dir, 'pods', `p${i}`, 'volume'),
      volume_capability: { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
      volume_context: context,
    });
    publish.push(performance.now() - start);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const loadedRss = await rssMb(plugin.child.pid);

  // Recovery: kill -9 with N recorded mounts; the new instance remounts them all before it serves.
  await plugin.kill('SIGKILL');
  csi.close();
  const restartStart = performance.now();
  plugin = await startPlugin({ socket: join(dir.dir, 'csi.sock'), stateDir: join(dir.dir, 'state'), store: redis.url, readyTimeoutMs: 60_000 });
  const recoveryMs = performance.now() - restartStart;
  csi = csiClients(loadCsiPackage().grpcObject, plugin.socket);
  const bareStart = performance.now();
  const bare = await startPlugin({ socket: join(dir.dir, 'bare.sock'), stateDir: join(dir.dir, 'bare-state'), store: redis.url });
  const bareMs = performance.now() - bareStart;
  await bare.kill('SIGKILL');

  const b = summary(baseline);
  const p = summary(publish);
  const perMount = (loadedRss - idleRss) / N;
  const budget = 120 + 8 * N;
  console.log(`baseline bindfs mount, ${N} mounts:     p50 ${b.p50.toFixed(1)} ms  p99 ${b.p99.toFixed(1)} ms`);
  console.log(`NodePublishVolume (gRPC + FUSE mount), ${N}: p50 ${p.p50.toFixed(1)} ms  p99 ${p.p99.toFixed(1)} ms`);
  console.log(`  ratio p50 ${(p.p50 / b.p50).toFixed(2)}x, p99 ${(p.p99 / b.p99).toFixed(2)}x bindfs; goal p99 < 250 ms: ${p.p99 < 250 ? 'met' : 'NOT met'}`);
  console.log(`plugin RSS idle ${idleRss.toFixed(0)} MB, with ${N} mounts ${loadedRss.toFixed(0)} MB (${perMount.toFixed(2)} MB per mount)`);
  console.log(`  goal < 120 MB + 8 MB per mount (${budget} MB): ${loadedRss < budget && perMount < 8 ? 'met' : 'NOT met'}`);
  console.log(`restart after kill -9 with ${N} mounts to serving, all remounted: ${recoveryMs.toFixed(0)} ms`);
  console.log(`baseline restart with nothing to recover:                  ${bareMs.toFixed(0)} ms`);
  console.log(`  ratio ${(recoveryMs / bareMs).toFixed(2)}x; goal mounts back within 5000 ms: ${recoveryMs < 5000 ? 'met' : 'NOT met'}`);
} finally {
  csi?.close();
  await plugin?.kill('SIGKILL');
  await detachAllUnder(dir.dir);
  await redis.stop();
  await dir.remove();
}
