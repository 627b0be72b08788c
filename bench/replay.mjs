#!/usr/bin/env node
// Replay bench: builds a 100k-event project in the embedded store, then times a cold
// ProjectWorkspace.open (fresh process each time) with and without snapshots. Baseline in the same
// run: reading the same events from the store without applying them, so the ratio shows what the
// projection itself costs. Goal: open < 2 s.
//   node bench/replay.mjs [EVENTS]        (needs `npx tsc -b core` first)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decide, DEFAULT_LIMITS, evolve, initialState, openStore, ProjectWorkspace } from '@lighthouse-bridge/core';

const project = { namespace: 'bench', name: 'replay' };
const ROUNDS = 3;

async function measure(mode, url) {
  const store = await openStore(url, { readOnly: mode !== 'snapshot' });
  const started = performance.now();
  let head;
  if (mode === 'read') {
    head = 0;
    for (;;) {
      const page = await store.read(project, { from: head + 1, limit: 5000 });
      if (page.length === 0) break;
      head = page[page.length - 1].seq;
    }
  } else {
    const ws = await ProjectWorkspace.open({ store, project, actor: 'bench', live: false, snapshotEvery: mode === 'snapshot' ? 1000 : 0 });
    head = ws.head;
    await ws.close();
  }
  const ms = performance.now() - started;
  await store.close();
  process.stdout.write(JSON.stringify({ ms, head, rss: process.memoryUsage().rss }));
}

function child(mode, url) {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--measure', mode, url], { encoding: 'utf8' });
  return JSON.parse(out);
}

function median(mode, url) {
  const runs = Array.from({ length: ROUNDS }, () => child(mode, url));
  runs.sort((a, b) => a.ms - b.ms);
  return runs[Math.floor(ROUNDS / 2)];
}

async function build(url, total) {
  const store = await openStore(url);
  // Decided against a scratch state that runs ahead of the store, so batches append in one go.
  const state = initialState();
  const sha = (i) => createHash('sha256').update(String(i)).digest('hex');
  let pending = [];
  const issue = (cmd) => {
    for (const e of decide(cmd, state, DEFAULT_LIMITS, Date.now())) {
      pending.push({ ...e, actor: 'bench' });
      evolve(state, { ...e, actor: 'bench', seq: state.seq + 1, time: new Date().toISOString() });
    }
  };
  const flush = async () => {
    if (pending.length > 0) await store.append(project, pending);
    pending = [];
  };
  // A realistic tree: 100 directories, 5,000 files rewritten over and over, new subdirectories now and then.
  for (let d = 0; d < 100; d++) issue({ type: 'MakeDirectory', path: `dir${d}` });
  for (let i = state.seq; state.seq < total; i++) {
    issue(
      i % 997 === 0
        ? { type: 'MakeDirectory', path: `dir${i % 100}/sub${i}` }
        : { type: 'WriteFile', path: `dir${i % 100}/file${i % 50}.txt`, hash: sha(i), size: i % 4096 },
    );
    if (pending.length >= 2000) await flush();
  }
  await flush();
  await store.close();
  return state.seq;
}

if (process.argv[2] === '--measure') {
  await measure(process.argv[3], process.argv[4]);
} else {
  const total = Number(process.argv[2] ?? 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'lhb-bench-replay-'));
  try {
    const url = `file://${dir}`;
    const t0 = performance.now();
    const head = await build(url, total);
    console.log(`built ${head} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const read = median('read', url);
    const full = median('full', url);
    child('snapshot', url); // writes the snapshot at the head
    const snap = median('full', url);
    const mb = (r) => (r.rss / 1048576).toFixed(0);
    console.log(`baseline: read ${read.head} events, no evolve      ${read.ms.toFixed(0)} ms (rss ${mb(read)} MB)`);
    console.log(`open, full replay (no snapshot)           ${full.ms.toFixed(0)} ms (rss ${mb(full)} MB)  = ${(full.ms / read.ms).toFixed(2)}x baseline`);
    console.log(`open, from snapshot at head               ${snap.ms.toFixed(0)} ms (rss ${mb(snap)} MB)  = ${(snap.ms / read.ms).toFixed(2)}x baseline, ${(full.ms / snap.ms).toFixed(1)}x faster than full replay`);
    console.log(`goal < 2000 ms: ${full.ms < 2000 && snap.ms < 2000 ? 'met' : 'NOT met'}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
