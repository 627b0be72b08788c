#!/usr/bin/env node
// Archive bench: builds a project in the embedded store (EVENTS file writes over BLOBS distinct
// blobs of 64 KiB), then times exportProject to a file and importProject of that file into a fresh
// embedded store and into a real redis-server. Baseline in the same run: a plain stream copy of the
// archive file (read + write of the same bytes, no fsync, as the export does). Figures: events/s and
// MiB/s of archive bytes; import also split into its passes (verify+spool, append, replay check).
//   node bench/archive.mjs [EVENTS] [BLOBS]        (needs `npx tsc -b core test` first)
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { finished } from 'node:stream/promises';

const core = new URL('../core/dist/', import.meta.url);
const { openStore, exportProject, importProject } = await import(new URL('index.js', core).href);
const { startRedis } = await import(new URL('../test/dist/redis.js', import.meta.url).href);

const EVENTS = Number(process.argv[2] ?? 100_000);
const BLOBS = Number(process.argv[3] ?? 2_000);
const BLOB_BYTES = 64 * 1024;
const project = { namespace: 'bench', name: 'archive' };
const dir = mkdtempSync(join(tmpdir(), 'lhb-bench-archive-'));
const MiB = 2 ** 20;

async function build(store) {
  const hashes = [];
  for (let i = 0; i < BLOBS; i++) hashes.push(await store.putBlob(project, randomBytes(BLOB_BYTES)));
  const batch = 100;
  for (let seq = 0; seq < EVENTS; seq += batch) {
    const events = Array.from({ length: Math.min(batch, EVENTS - seq) }, (_, k) => {
      const i = seq + k;
      return { type: 'FileWritten', actor: `agent-${i % 4}`, data: { path: `d${i % 50}/f${i % 5000}.txt`, hash: hashes[i % BLOBS], size: BLOB_BYTES, mode: 0o644, mtimeMs: i } };
    });
    await store.append(project, events, { expectedVersion: seq });
  }
}

async function timed(fn) {
  const started = performance.now();
  const result = await fn();
  return { ms: performance.now() - started, result };
}

function line(what, ms, events, bytes, baselineMs) {
  const s = ms / 1000;
  const ratio = baselineMs === undefined ? '' : `  = ${(ms / baselineMs).toFixed(1)}x file copy`;
  return `${what.padEnd(34)} ${ms.toFixed(0).padStart(6)} ms  ${Math.round(events / s).toString().padStart(8)} events/s  ${(bytes / MiB / s).toFixed(1).padStart(7)} MiB/s${ratio}`;
}

async function importInto(url, archive, name) {
  const store = await openStore(url);
  const marks = {};
  const started = performance.now();
  await importProject(store, { namespace: 'bench', name }, createReadStream(archive), {
    onProgress: ({ phase }) => (marks[phase] ??= performance.now() - started),
  });
  const ms = performance.now() - started;
  await store.close();
  return { ms, verify: marks.importing ?? ms, append: (marks.checking ?? ms) - (marks.importing ?? 0), check: ms - (marks.checking ?? ms) };
}

const redis = await startRedis();
try {
  const source = await openStore(`file://${join(dir, 'source')}`);
  await build(source);
  const archive = join(dir, 'project.lhb');
  const exported = await timed(async () => {
    const out = createWriteStream(archive);
    const result = await exportProject(source, project, out);
    out.end();
    await finished(out);
    return result;
  });
  await source.close();
  const bytes = statSync(archive).size;
  const copy = await timed(() => pipeline(createReadStream(archive), createWriteStream(join(dir, 'copy.lhb'))));

  console.log(`${EVENTS} events, ${BLOBS} blobs of 64 KiB; archive ${(bytes / MiB).toFixed(1)} MiB`);
  console.log(line('baseline: stream copy of the file', copy.ms, EVENTS, bytes));
  console.log(line('export (embedded -> file)', exported.ms, exported.result.events, bytes, copy.ms));
  for (const [what, url, name] of [
    ['import (file -> embedded)', `file://${join(dir, 'target')}`, 'embedded'],
    ['import (file -> Redis)', redis.url, 'redis'],
  ]) {
    const r = await importInto(url, archive, name);
    console.log(line(what, r.ms, EVENTS, bytes, copy.ms));
    console.log(`  passes: verify+spool ${r.verify.toFixed(0)} ms, append ${r.append.toFixed(0)} ms, replay check ${r.check.toFixed(0)} ms`);
  }
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
