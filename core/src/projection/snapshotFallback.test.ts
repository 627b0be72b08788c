import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { decide } from '../aggregate/decide.js';
import { evolve } from '../aggregate/evolve.js';
import { initialState } from '../aggregate/initialState.js';
import { DEFAULT_LIMITS } from '../aggregate/limits.js';
import { encodeSnapshot } from '../aggregate/snapshotCodec.js';
import type { ProjectState } from '../aggregate/state.js';
import { ProjectWorkspace } from '../commandHandling/workspace.js';
import type { ProjectId } from '../events/projectId.js';
import type { EventStore } from '../store/eventStore.js';
import { openStore } from '../store/open.js';
import { CHUNK_BYTES } from '../store/redis/chunks.js';
import { projectKeys } from '../redis/keys.js';
import { replayInto, restore } from './replay.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const encoded = (state: ProjectState): string => Buffer.from(encodeSnapshot(state)).toString('base64');

/**
 * Writes `files` files with long names (so a snapshot of the result spans several Redis chunks)
 * and saves snapshots at `snapshotAt` and at the head. Returns the head.
 */
async function seed(store: EventStore, project: ProjectId, files: number, snapshotAt: number): Promise<number> {
  const state = initialState();
  const pending = [];
  for (let i = 0; i < files; i++) {
    const path = `file-${String(i).padStart(6, '0')}-${'x'.repeat(150)}`;
    for (const event of decide({ type: 'WriteFile', path, hash: sha(path), size: i }, state, DEFAULT_LIMITS, 1_000_000 + i)) {
      evolve(state, { ...event, actor: 'seed', seq: state.seq + 1, time: new Date(1_000_000 + i).toISOString() });
      pending.push({ ...event, actor: 'seed' });
    }
  }
  for (let i = 0; i < pending.length; i += 500) {
    await store.append(project, pending.slice(i, i + 500), { expectedVersion: i });
  }
  for (const seq of [snapshotAt, pending.length]) {
    const at = await replayInto(store, project, initialState(), seq);
    await store.saveSnapshot(project, { seq, time: at.time, data: encodeSnapshot(at) });
  }
  return pending.length;
}

/** Open, restore and a history view past the damaged snapshot all equal a full replay; the skip is reported. */
async function expectFallback(store: EventStore, project: ProjectId, head: number): Promise<void> {
  const full = await replayInto(store, project, initialState());
  const workspace = await ProjectWorkspace.open({ store, project, actor: 'tester', live: false, snapshotEvery: 0 });
  try {
    assert.equal(encoded(workspace.state), encoded(full));
    assert.equal(encoded(await workspace.stateAt(head)), encoded(full));
  } finally {
    await workspace.close();
  }
  const skipped: Error[] = [];
  const { state, snapshotSeq } = await restore(store, project, undefined, (error) => skipped.push(error));
  assert.equal(encoded(state), encoded(full));
  assert.equal(snapshotSeq, 0);
  assert.equal(skipped.length, 1, 'the damaged snapshot is reported');
  assert.match(skipped[0]?.message ?? '', /snapshot skipped/);
}

/**
 * Saves a snapshot every 2,500 seqs up to 100,000 and checks the retention rule of ADR 0031: the
 * newest 8, plus the oldest in each 10,000-seq span. Returns how many are kept.
 */
async function expectRetention(store: EventStore, project: ProjectId): Promise<number> {
  const saved = Array.from({ length: 40 }, (_, i) => (i + 1) * 2500);
  for (const seq of saved) await store.saveSnapshot(project, { seq, time: new Date(seq).toISOString(), data: Buffer.from(String(seq)) });
  const kept = [2500, ...Array.from({ length: 8 }, (_, i) => (i + 1) * 10_000), ...saved.slice(-8)];
  for (const seq of [1, ...saved, 100_001]) {
    const want = kept.filter((k) => k <= seq).at(-1);
    const got = await store.loadSnapshot(project, seq);
    assert.equal(got?.seq, want, `snapshot at or before ${seq}`);
    if (got) assert.equal(Buffer.from(got.data).toString(), String(want));
  }
  return kept.length;
}

describe('snapshot retention: the newest 8 and one per 10,000 seqs', () => {
  it('embedded', async () => {
    const dir = await tempDir('lhb-snapkeep-');
    const store = await openStore(`file://${dir.dir}`);
    try {
      const kept = await expectRetention(store, { namespace: 'default', name: 'kept' });
      const files = await readdir(join(dir.dir, 'default', 'kept', 'snapshots'));
      assert.equal(files.length, kept, files.join(' '));
    } finally {
      await store.close();
      await dir.remove();
    }
  });

  it('redis', async () => {
    const server = await startRedis();
    const store = await openStore(server.url);
    try {
      const project: ProjectId = { namespace: 'default', name: 'kept' };
      const kept = await expectRetention(store, project);
      assert.equal(Number(await server.cli(['ZCARD', projectKeys(project).snapshots])), kept);
      const keys = (await server.cli(['KEYS', `${projectKeys(project).snapshot(0).replace(/0$/, '')}*`])).trim().split('\n');
      assert.equal(keys.length, kept, 'pruned snapshots leave no keys behind');
    } finally {
      await store.close();
      await server.stop();
    }
  });
});

describe('a damaged snapshot falls back to replaying the log', () => {
  it('embedded: a flipped byte in the newest .snap file', async () => {
    const dir = await tempDir('lhb-snapfb-');
    const store = await openStore(`file://${dir.dir}`);
    try {
      const project: ProjectId = { namespace: 'default', name: 'damaged' };
      const head = await seed(store, project, 300, 100);
      const snapshots = join(dir.dir, 'default', 'damaged', 'snapshots');
      const newest = (await readdir(snapshots)).sort().at(-1);
      assert.ok(newest);
      const file = await readFile(join(snapshots, newest));
      file[file.length - 10] = (file[file.length - 10] ?? 0) ^ 0xff;
      await writeFile(join(snapshots, newest), file);
      await expectFallback(store, project, head);
      // Older snapshots are still used for views before the damaged one.
      assert.equal((await restore(store, project, 150, () => assert.fail('no skip expected'))).snapshotSeq, 100);
    } finally {
      await store.close();
      await dir.remove();
    }
  });

  describe('redis', () => {
    let server: RedisServer;
    let store: EventStore;
    before(async () => {
      server = await startRedis();
      store = await openStore(server.url);
    });
    after(async () => {
      await store?.close();
      await server?.stop();
    });

    it('a deleted chunk key of the newest snapshot', async () => {
      const project: ProjectId = { namespace: 'default', name: 'damaged' };
      const head = await seed(store, project, 2000, 100);
      const key = projectKeys(project).snapshot(head);
      assert.ok(Number(await server.cli(['HGET', key, 'chunks'])) > 1, `the snapshot (${CHUNK_BYTES}-byte chunks) should span several chunks`);
      assert.equal((await server.cli(['DEL', `${key}:1`])).trim(), '1');
      await expectFallback(store, project, head);
    });
  });
});
