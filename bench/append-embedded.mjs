// Durable append throughput of the embedded store, against raw write+fdatasync in the same run.
// Usage: node bench/append-embedded.mjs [--events N] [--inflight K[,K2...]]
// With 1 in flight the run is capped at 3,000 events: it measures latency, not throughput.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { embeddedCommitStats, openEmbeddedStore } from '@lighthouse-bridge/core/store';

const { values } = parseArgs({ options: { events: { type: 'string', default: '100000' }, inflight: { type: 'string', default: '1,64,256' } } });
const totalEvents = Number(values.events);
const inflights = values.inflight.split(',').map(Number);
const RECORD = 1024;
const root = mkdtempSync(join(process.env.LHB_BENCH_DIR ?? tmpdir(), 'lhb-bench-append-'));

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** An event whose JSON encoding is about 1 KiB. */
function event(i) {
  return { type: 'AnnotationAdded', actor: 'bench', data: { path: `src/file-${i % 1000}.ts`, id: `a${i}`, text: 'x'.repeat(940) } };
}

async function embedded(inflight) {
  const total = inflight === 1 ? Math.min(totalEvents, 3000) : totalEvents;
  const dir = join(root, `embedded-${inflight}`);
  const store = await openEmbeddedStore({ dir, readOnly: false });
  const project = { namespace: 'bench', name: 'append' };
  await store.append(project, [event(0)]);
  const size = JSON.stringify(event(0)).length;
  const before = embeddedCommitStats();
  const latencies = new Float64Array(total);
  let issued = 0;
  const started = performance.now();
  async function worker() {
    while (issued < total) {
      const i = issued++;
      const t0 = performance.now();
      await store.append(project, [event(i)]);
      latencies[i] = performance.now() - t0;
    }
  }
  await Promise.all(Array.from({ length: inflight }, worker));
  const seconds = (performance.now() - started) / 1000;
  const after = embeddedCommitStats();
  await store.close();
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  return {
    perSecond: total / seconds,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    batch: (after.appends - before.appends) / (after.batches - before.batches),
    eventBytes: size,
    total,
  };
}

/**
 * `batch` 1 KiB records per write and fdatasync, no encoding: with batch 1 the floor (what a naive
 * log does), with the store's mean batch the ceiling for group commit at that batch size.
 */
function rawBatched(seconds, batch) {
  const path = join(root, `raw-batched-${batch}.log`);
  const fd = openSync(path, 'w');
  const buf = Buffer.alloc(RECORD * batch, 'b');
  let n = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    writeSync(fd, buf);
    fdatasyncSync(fd);
    n += batch;
  }
  const perSecond = n / ((performance.now() - started) / 1000);
  closeSync(fd);
  return perSecond;
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
try {
  const single = rawBatched(2, 1);
  console.log(`baseline raw write+fdatasync, 1 KiB, one at a time : ${fmt(single)} records/s`);
  for (const inflight of inflights) {
    const r = await embedded(inflight);
    const batched = rawBatched(2, Math.max(1, Math.round(r.batch)));
    console.log(
      `embedded, ${inflight} in flight, ${fmt(r.total)} events of ${r.eventBytes} B JSON: ${fmt(r.perSecond)} durable events/s, ` +
        `append p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms, mean batch ${r.batch.toFixed(1)} appends/fsync`,
    );
    console.log(`  baseline raw write+fdatasync batched ${Math.round(r.batch)} x 1 KiB: ${fmt(batched)} records/s`);
    console.log(`  ratio embedded / raw one-at-a-time: ${(r.perSecond / single).toFixed(1)}x; embedded / raw batched: ${(r.perSecond / batched).toFixed(2)}x`);
    if (inflight > 1) console.log(`  goal >= 50,000 durable events/s: ${r.perSecond >= 50_000 ? 'met' : 'NOT met'}`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
