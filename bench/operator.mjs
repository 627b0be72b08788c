#!/usr/bin/env node
// Operator bench against a real kube-apiserver + etcd and a real redis-server, each figure beside a
// baseline measured in the same run:
//   1. apply -> Ready, one project at a time, N projects (default 100): p50/p99.
//      Baseline: create -> the same watch sees ADDED (the apiserver round trip alone).
//   2. M projects (default 500) created while the operator is down, then the operator started:
//      time until all are Ready. Baseline: M plain creates by this process, sequential.
//   3. operator RSS after 2 (from /proc/PID/status).
//   node bench/operator.mjs [N] [M]   (needs `npx tsc -b operator cli test` and test/setup/tools/kube.sh)
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { resourcePath } from '@lighthouse-bridge/operator';
import { ensureNamespace, installBridgeProjectCrd, kubeFor } from '@lighthouse-bridge/operator/testing';
import { startKube } from '@lighthouse-bridge/test/kube';
import { startRedis } from '@lighthouse-bridge/test/redis';
const CLI = fileURLToPath(new URL('../cli/dist/main.js', import.meta.url));

const N = Number(process.argv[2] ?? 100);
const M = Number(process.argv[3] ?? 500);
const TIMEOUT_MS = 180_000;

const [env, redis] = await Promise.all([startKube(), startRedis()]);
let operator;
try {
  const kube = await kubeFor(env.kubeconfig);
  await installBridgeProjectCrd(kube);
  for (const ns of ['bench-base', 'bench', 'bench-cold']) await ensureNamespace(kube, ns);

  // One watch over all namespaces records when each object is first seen and first Ready.
  const seen = new Map();
  const ready = new Map();
  const waiters = new Map();
  const abort = new AbortController();
  const notify = (key) => waiters.get(key)?.();
  const isReady = (o) => o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  const watching = (async () => {
    while (!abort.signal.aborted) {
      // A just-established CRD answers 429 "storage is (re)initializing" for a moment.
      const list = await kube.get(resourcePath()).catch(() => undefined);
      if (!list) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      await kube
        .watch(`${resourcePath()}?watch=1&resourceVersion=${list.metadata.resourceVersion}`, (e) => {
          const key = `${e.object.metadata.namespace}/${e.object.metadata.name}`;
          if (!seen.has(key)) seen.set(key, performance.now());
          if (!ready.has(key) && isReady(e.object)) ready.set(key, performance.now());
          notify(key);
        }, abort.signal)
        .catch(() => undefined);
    }
  })();
  const waitUntil = (key, map) =>
    map.has(key)
      ? Promise.resolve(map.get(key))
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`timeout waiting for ${key}`)), TIMEOUT_MS);
          waiters.set(key, () => {
            if (!map.has(key)) return;
            clearTimeout(timer);
            waiters.delete(key);
            resolve(map.get(key));
          });
        });
  const create = (ns, name) => kube.create(resourcePath(ns), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name }, spec: {} });
  const pct = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
  const ms = (x) => `${x.toFixed(1)} ms`;

  const startOperator = () => {
    const child = spawn(process.execPath, [CLI, 'operator', '--redis', redis.url, '--relist-seconds', '300'], {
      env: { ...process.env, KUBECONFIG: env.kubeconfig, LHB_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    return child;
  };

  // Warm-up: the first writes after a CRD is established wait for its storage.
  for (let i = 0; i < 5; i++) {
    await create('bench-base', `warmup-${i}`);
    await waitUntil(`bench-base/warmup-${i}`, seen);
  }
  // 1. baseline: create -> ADDED seen, no operator running.
  const base = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await create('bench-base', `p${i}`);
    base.push((await waitUntil(`bench-base/p${i}`, seen)) - t);
  }
  operator = startOperator();
  // The operator also reconciles the baseline objects first; wait for them so they do not skew step 1.
  for (let i = 0; i < N; i++) await waitUntil(`bench-base/p${i}`, ready);
  const lat = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await create('bench', `p${i}`);
    lat.push((await waitUntil(`bench/p${i}`, ready)) - t);
  }
  console.log(`apply -> Ready, ${N} projects one at a time: p50 ${ms(pct(lat, 0.5))}  p99 ${ms(pct(lat, 0.99))}`);
  console.log(`baseline create -> watch ADDED:             p50 ${ms(pct(base, 0.5))}  p99 ${ms(pct(base, 0.99))}`);
  console.log(`  ratio p50 ${(pct(lat, 0.5) / pct(base, 0.5)).toFixed(1)}x, p99 ${(pct(lat, 0.99) / pct(base, 0.99)).toFixed(1)}x; goal p50 < 1 s: ${pct(lat, 0.5) < 1000 ? 'met' : 'NOT met'}`);

  // 2. cold start with M waiting projects.
  operator.kill('SIGTERM');
  await new Promise((resolve) => operator.once('exit', resolve));
  const c0 = performance.now();
  for (let i = 0; i < M; i++) await create('bench-cold', `p${i}`);
  const createMs = performance.now() - c0;
  const s0 = performance.now();
  operator = startOperator();
  for (let i = 0; i < M; i++) await waitUntil(`bench-cold/p${i}`, ready);
  const coldMs = performance.now() - s0;
  console.log(`${M} projects from cold start: all Ready in ${(coldMs / 1000).toFixed(1)} s (${(M / (coldMs / 1000)).toFixed(0)}/s)`);
  console.log(`baseline ${M} sequential creates:     ${(createMs / 1000).toFixed(1)} s`);
  console.log(`  ratio ${(coldMs / createMs).toFixed(1)}x; goal < 60 s: ${coldMs < 60_000 ? 'met' : 'NOT met'}`);

  // 3. RSS with every project cached (N + N + M objects).
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const rss = /VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${operator.pid}/status`, 'utf8'))?.[1];
  const { execFileSync } = await import('node:child_process');
  const idle = execFileSync(process.execPath, ['--input-type=module', '-e', "await import('@kubernetes/client-node'); await import('ioredis'); await import('winston'); process.stdout.write(String(process.memoryUsage().rss))"], { cwd: fileURLToPath(new URL('..', import.meta.url)) }).toString();
  console.log(`operator RSS with ${2 * N + M} projects: ${(Number(rss) / 1024).toFixed(0)} MB`);
  console.log(`baseline node importing client-node, ioredis, winston: ${(Number(idle) / 1048576).toFixed(0)} MB  (+${(Number(rss) / 1024 - Number(idle) / 1048576).toFixed(0)} MB)`);
  abort.abort();
  await watching;
} finally {
  operator?.kill('SIGKILL');
  await Promise.all([env.stop(), redis.stop()]);
}
