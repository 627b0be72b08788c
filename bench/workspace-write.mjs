#!/usr/bin/env node
/**
 * What a close costs the store, without FUSE: `workspace.writeFile` of 100 B (each file its own
 * content) in a loop on the embedded store with `durability: 'visible'` (what a mount's close
 * does), against the least such a close could cost: one write(2) of the same bytes appended to one
 * open file in the same directory. Needs a build (`make build`).
 *
 *   node bench/workspace-write.mjs [--files 5000]
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ProjectWorkspace } from '@lighthouse-bridge/core';
import { openEmbeddedStore } from '@lighthouse-bridge/core/store';

const { values } = parseArgs({ options: { files: { type: 'string', default: '5000' } } });
const FILES = Number(values.files);
const WARMUP = 500;

const percentiles = (samples) => {
  const sorted = samples.sort((a, b) => a - b);
  return { p50: sorted[Math.floor(sorted.length / 2)], p99: sorted[Math.floor(sorted.length * 0.99)] };
};
const content = (i) => Buffer.from(`content ${i} `.padEnd(100, 'x'));

const dir = mkdtempSync(join(tmpdir(), 'lhb-wsw-'));
try {
  const plain = [];
  const fd = openSync(join(dir, 'plain'), 'a');
  for (let i = 0; i < FILES + WARMUP; i++) {
    const t = performance.now();
    writeSync(fd, content(i));
    if (i >= WARMUP) plain.push((performance.now() - t) * 1000);
  }
  closeSync(fd);
  const store = await openEmbeddedStore({ dir: join(dir, 'store'), readOnly: false });
  const ws = await ProjectWorkspace.open({ store, project: { namespace: 'default', name: 'bench' }, actor: 'bench', live: true, durability: 'visible', onError: (e) => console.error(e) });
  await ws.execute({ type: 'MakeDirectory', path: 'w', mode: 0o755 });
  const ours = [];
  for (let i = 0; i < FILES + WARMUP; i++) {
    const t = performance.now();
    await ws.writeFile(`w/f${i}`, content(i), { mode: 0o644 });
    if (i >= WARMUP) ours.push((performance.now() - t) * 1000);
  }
  await ws.close();
  await store.close();
  const [a, b] = [percentiles(plain), percentiles(ours)];
  console.log(`write(2) 100 B, appended     p50 ${a.p50.toFixed(1).padStart(6)} µs  p99 ${a.p99.toFixed(1).padStart(6)} µs`);
  console.log(`workspace.writeFile 100 B    p50 ${b.p50.toFixed(1).padStart(6)} µs  p99 ${b.p99.toFixed(1).padStart(6)} µs  (p50 ${(b.p50 / a.p50).toFixed(1)}x)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
