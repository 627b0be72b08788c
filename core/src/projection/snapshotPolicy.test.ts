import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { initialState } from '../aggregate/initialState.js';
import type { ProjectState } from '../aggregate/state.js';
import type { EventStore } from '../store/eventStore.js';
import { openStore } from '../store/open.js';
import { SnapshotPolicy } from './snapshotPolicy.js';

/** A state at `seq` whose tree has `entries` entries, the root included. */
function stateWith(entries: number, seq: number): ProjectState {
  const state = initialState();
  for (let i = 1; i < entries; i++) state.nodes.set(`f${i}`, { kind: 'file', hash: 'a'.repeat(64), size: 0, mode: 0o644, mtimeMs: 0, ctimeMs: 0 });
  state.seq = seq;
  state.time = new Date(0).toISOString();
  return state;
}

describe('SnapshotPolicy on the embedded store', () => {
  let store: EventStore;
  let dir: { dir: string; remove: () => Promise<void> };
  let n = 0;
  before(async () => {
    dir = await tempDir('lhb-snap-policy-');
    store = await openStore(`file://${dir.dir}`);
  });
  after(async () => {
    await store.close();
    await dir.remove();
  });

  /** The seqs at which a policy with `every` saved, observing states of `entries` entries at each seq in `seqs`. */
  async function savedAt(every: number, entries: number, seqs: number[]): Promise<number[]> {
    const project = { namespace: 'policy', name: `p${++n}` };
    const policy = new SnapshotPolicy(store, project, every, 0);
    const saved: number[] = [];
    for (const seq of seqs) {
      policy.observe(stateWith(entries, seq));
      await policy.idle();
      const latest = await store.loadSnapshot(project);
      if (latest && latest.seq !== saved.at(-1)) saved.push(latest.seq);
    }
    return saved;
  }

  const upTo = (last: number, step: number): number[] => Array.from({ length: last / step }, (_, i) => (i + 1) * step);

  it('saves every `every` events while the tree has fewer entries than that', async () => {
    assert.deepEqual(await savedAt(100, 40, upTo(400, 10)), [100, 200, 300, 400]);
  });

  it('waits for as many events as the tree has entries, so encoding costs a bounded time per event', async () => {
    assert.deepEqual(await savedAt(100, 250, upTo(1000, 10)), [250, 500, 750, 1000]);
  });

  it('never waits for more than ten times `every`, so an open replays a bounded number of events', async () => {
    assert.deepEqual(await savedAt(10, 5000, upTo(400, 10)), [100, 200, 300, 400]);
  });
});
