#!/usr/bin/env node
// Speed-layer bench, each figure beside a baseline measured in the same run:
//   1. cached decisions in-process (L1): p50/p99 per call and calls/s; baseline: the irreducible
//      part of a lookup (JSON.stringify + sha256 + Map.get). Goal: p99 < 1 ms at >= 20,000/s.
//   2. 1,000 project rules, uncached (every input new, the matching rule last): p99. Goal < 1 ms.
//   3. L2 hit (L1 disabled) vs a raw ioredis GET round trip to the same redis-server.
//   node bench/validation.mjs [CALLS]        (needs `npx tsc -b core test` first; redis-server on PATH)
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLogger } from '@lighthouse-bridge/core/observability';
import { createValidator } from '@lighthouse-bridge/core/speed-layer';
import { startRedis } from '@lighthouse-bridge/test/redis';

const CALLS = Number(process.argv[2] ?? 200_000);
const project = { namespace: 'bench', name: 'validation' };
const silent = createLogger('bench', { level: 'error' });

function stats(samples) {
  const s = Float64Array.from(samples).sort();
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] };
}
const us = (ms) => `${(ms * 1000).toFixed(1)} µs`;

/** Sequential calls (as one agent's tool calls arrive), timing each; returns samples and calls/s. */
async function timed(n, call) {
  const samples = new Array(n);
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call(i);
    samples[i] = performance.now() - t;
  }
  return { ...stats(samples), perSecond: n / ((performance.now() - started) / 1000) };
}

const requests = Array.from({ length: 1000 }, (_, i) => ({
  agent: `agent-${i % 10}`,
  tool: i % 2 ? 'Bash' : 'Read',
  input: i % 2 ? { command: `git log --oneline -n ${i}`, description: 'recent history' } : { file_path: `src/module-${i}.ts`, limit: 200 },
}));

// 1. Cached, in-process.
{
  const v = await createValidator({ project, rateLimit: false, logger: silent });
  for (const r of requests) await v.validate(r);
  await timed(20_000, (i) => v.validate(requests[i % requests.length])); // warm-up (JIT)
  const cached = await timed(CALLS, (i) => v.validate(requests[i % requests.length]));
  const map = new Map(requests.map((r) => [createHash('sha256').update(JSON.stringify(r)).digest('hex'), r]));
  const baseline = await timed(CALLS, async (i) => map.get(createHash('sha256').update(JSON.stringify(requests[i % requests.length])).digest('hex')));
  const answer = await v.validate(requests[1]);
  if (answer.tier !== 'cache-l1') throw new Error(`expected cache hits, got ${answer.tier}`);
  console.log(`cached (L1), ${CALLS} calls:   p50 ${us(cached.p50)}  p99 ${us(cached.p99)}  ${Math.round(cached.perSecond)}/s`);
  console.log(`baseline stringify+sha256+Map.get: p50 ${us(baseline.p50)}  p99 ${us(baseline.p99)}  ${Math.round(baseline.perSecond)}/s`);
  console.log(`  ratio p99 ${(cached.p99 / baseline.p99).toFixed(2)}x baseline; goal p99 < 1 ms at >= 20,000/s: ${cached.p99 < 1 && cached.perSecond >= 20_000 ? 'met' : 'NOT met'}`);
  await v.close();
}

// 2. 1,000 rules, uncached.
{
  const rules = Array.from({ length: 999 }, (_, i) => ({
    name: `rule-${i}`,
    priority: 2000 - i,
    decision: i % 3 === 0 ? 'deny' : 'allow',
    tools: i % 2 ? ['Bash'] : ['Bash', 'Shell*'],
    match: { command: `^tool-${i}( |$)` },
  }));
  rules.push({ name: 'the-last', priority: 1, decision: 'allow', tools: ['Bash'], match: { command: '^make build-' } });
  const v = await createValidator({ project, rateLimit: false, logger: silent, policy: { rules }, l1MaxBytes: 1 });
  const n = Math.min(CALLS, 50_000);
  await timed(2000, (i) => v.validate({ agent: 'a', tool: 'Bash', input: { command: `make build-warm-${i}` } }));
  const uncached = await timed(n, (i) => v.validate({ agent: 'a', tool: 'Bash', input: { command: `make build-${i}` } }));
  const check = await v.validate({ agent: 'a', tool: 'Bash', input: { command: 'make build-check' } });
  if (check.rule !== 'the-last' || check.cached) throw new Error(`expected rule the-last uncached, got ${JSON.stringify(check)}`);
  const none = await createValidator({ project, rateLimit: false, logger: silent, policy: { mode: 'replace', rules: [rules.at(-1)] }, l1MaxBytes: 1 });
  const oneRule = await timed(n, (i) => none.validate({ agent: 'a', tool: 'Bash', input: { command: `make build-${i}` } }));
  console.log(`1,000 rules, uncached, ${n} calls: p50 ${us(uncached.p50)}  p99 ${us(uncached.p99)}  ${Math.round(uncached.perSecond)}/s`);
  console.log(`baseline 1 rule, uncached:         p50 ${us(oneRule.p50)}  p99 ${us(oneRule.p99)}`);
  console.log(`  ratio p99 ${(uncached.p99 / oneRule.p99).toFixed(2)}x baseline; goal p99 < 1 ms: ${uncached.p99 < 1 ? 'met' : 'NOT met'}`);
  await v.close();
  await none.close();
}

// 3. L2 hit vs raw GET.
{
  const redis = await startRedis();
  try {
    const writer = await createValidator({ project, rateLimit: false, logger: silent, redisUrl: redis.url });
    for (const r of requests) await writer.validate(r);
    await writer.close();
    const reader = await createValidator({ project, rateLimit: false, logger: silent, redisUrl: redis.url, l1MaxBytes: 1 });
    const n = Math.min(CALLS, 20_000);
    await timed(2000, (i) => reader.validate(requests[i % requests.length]));
    const l2 = await timed(n, (i) => reader.validate(requests[i % requests.length]));
    const hit = await reader.validate(requests[3]);
    if (hit.tier !== 'cache-l2') throw new Error(`expected L2 hits, got ${hit.tier}`);
    const raw = new Redis({ host: redis.host, port: redis.port });
    const keys = (await raw.keys('lhb:{bench/validation}:dec:*')).slice(0, requests.length);
    await timed(2000, (i) => raw.get(keys[i % keys.length]));
    const get = await timed(n, (i) => raw.get(keys[i % keys.length]));
    raw.disconnect();
    console.log(`L2 hit (L1 off), ${n} calls:       p50 ${us(l2.p50)}  p99 ${us(l2.p99)}  ${Math.round(l2.perSecond)}/s`);
    console.log(`baseline raw ioredis GET:          p50 ${us(get.p50)}  p99 ${us(get.p99)}  ${Math.round(get.perSecond)}/s`);
    console.log(`  ratio p50 ${(l2.p50 / get.p50).toFixed(2)}x, p99 ${(l2.p99 / get.p99).toFixed(2)}x raw GET`);
    await reader.close();
  } finally {
    await redis.stop();
  }
}
