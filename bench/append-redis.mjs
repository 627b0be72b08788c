// Event append throughput to Redis, one project, against redis-benchmark XADD in the same run.
// Usage: node bench/append-redis.mjs [events=200000] [inFlight=512]   (after `npx tsc -b core test`)
// Baseline: redis-benchmark, 50 clients, pipeline 16, XADD of one 1 KiB field with an auto id.
// Second baseline: the same XADDs from Node through ioredis with auto-pipelining, `inFlight`
// outstanding: the ceiling for any Node client on this machine.
// Ours: openRedisStore, one append per event (1 KiB of event data), `inFlight` appends outstanding
// at a time from one process, each resolved only when Redis acknowledged it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startRedis } from '@lighthouse-bridge/test/redis';
import { parseStoreUrl } from '@lighthouse-bridge/core';
import { openRedisStore } from '@lighthouse-bridge/core/store';

const events = Number(process.argv[2] ?? 200_000);
const inFlight = Number(process.argv[3] ?? 512);
const run = promisify(execFile);

const redis = await startRedis();
try {
  const value = 'x'.repeat(1024);
  const { stdout } = await run(
    'redis-benchmark',
    ['-h', redis.host, '-p', String(redis.port), '-P', '16', '-c', '50', '-n', String(events), '-q', 'XADD', 'lhb:bench', '*', 'f', value],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const baseline = Number(/([\d.]+) requests per second/.exec(stdout)?.[1]);
  if (!Number.isFinite(baseline)) throw new Error(`cannot parse redis-benchmark output: ${stdout.slice(-500)}`);
  await redis.cli(['del', 'lhb:bench']);

  const saturate = async (op) => {
    let next = 0;
    const started = process.hrtime.bigint();
    const worker = async () => {
      while (next < events) await op(next++);
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    return Number(process.hrtime.bigint() - started) / 1e9;
  };
  const client = new Redis({ host: redis.host, port: redis.port, enableAutoPipelining: true });
  for (let i = 0; i < 2000; i++) await client.xadd('lhb:bench', '*', 'f', value);
  const ioredisRate = events / (await saturate(() => client.xadd('lhb:bench', '*', 'f', value)));
  await client.del('lhb:bench');
  client.disconnect();

  const store = await openRedisStore(parseStoreUrl(redis.url));
  const project = { namespace: 'bench', name: 'append' };
  const event = (i) => ({
    type: 'AnnotationAdded',
    actor: 'bench',
    data: { path: `src/file-${i % 100}.ts`, id: `a${i}`, text: value.slice(0, 1024 - 60) },
  });
  // Warm up: script loaded, connection and JIT settled.
  for (let i = 0; i < 2000; i++) await store.append(project, [event(i)]);

  const seconds = await saturate((i) => store.append(project, [event(i)]));
  const ours = events / seconds;
  const head = await store.head(project);
  await store.close();
  if (head !== events + 2000) throw new Error(`head is ${head}, expected ${events + 2000}`);

  const ratio = ours / baseline;
  console.log(`redis-benchmark XADD 1 KiB, -P 16 -c 50:   ${Math.round(baseline)} events/s`);
  console.log(`ioredis XADD 1 KiB, ${inFlight} in flight:     ${Math.round(ioredisRate)} events/s`);
  console.log(`store.append 1 KiB, ${inFlight} in flight:     ${Math.round(ours)} events/s (${events} in ${seconds.toFixed(2)} s)`);
  console.log(`  ratio ${ratio.toFixed(2)}x redis-benchmark, ${(ours / ioredisRate).toFixed(2)}x plain ioredis XADD`);
  console.log(`  goal >= 50,000/s: ${ours >= 50_000 ? 'met' : 'NOT met'}; goal >= 0.5x redis-benchmark: ${ratio >= 0.5 ? 'met' : 'NOT met'}`);
} finally {
  await redis.stop();
}
