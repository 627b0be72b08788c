import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { decide } from '../aggregate/decide.js';
import { evolve } from '../aggregate/evolve.js';
import { initialState } from '../aggregate/initialState.js';
import { DEFAULT_LIMITS } from '../aggregate/limits.js';
import { encodeSnapshot } from '../aggregate/snapshotCodec.js';
import type { Command } from '../aggregate/commands.js';
import type { RecordedEvent } from '../events/events.js';
import type { ProjectId } from '../events/projectId.js';
import type { EventStore } from '../store/eventStore.js';
import { openStore } from '../store/open.js';
import { REPLAY_PAGE, replayInto, restore, seqAt, stateAt } from './replay.js';

const project: ProjectId = { namespace: 'default', name: 'history' };
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('projection on the embedded store', () => {
  let store: EventStore;
  let dir: { dir: string; remove: () => Promise<void> };
  const events: RecordedEvent[] = [];
  /** The state after each seq, computed independently by evolving the recorded events one by one. */
  const expected: string[] = [];

  before(async () => {
    dir = await tempDir('lhb-proj-');
    store = await openStore(`file://${dir.dir}`);
    const state = initialState();
    expected.push(Buffer.from(encodeSnapshot(state)).toString());
    // More events than one replay page, in bursts with pauses so store times repeat and differ.
    const total = REPLAY_PAGE + 700;
    const commands: Command[] = [{ type: 'MakeDirectory', path: 'd' }];
    for (let i = 1; i < total; i++) {
      if (i % 500 === 0) commands.push({ type: 'Move', from: 'd', to: `d${i}` }, { type: 'MakeDirectory', path: 'd' });
      else commands.push({ type: 'WriteFile', path: `d/f${i % 13}`, hash: sha(String(i)), size: i % 100 });
    }
    for (const [i, command] of commands.entries()) {
      const decided = decide(command, state, DEFAULT_LIMITS, 1_000_000 + i);
      const recorded = await store.append(project, decided.map((e) => ({ ...e, actor: 'seed' })), { expectedVersion: state.seq });
      for (const e of recorded) {
        evolve(state, e);
        expected.push(Buffer.from(encodeSnapshot(state)).toString());
      }
      events.push(...recorded);
      if (i % 1500 === 0) await new Promise((r) => setTimeout(r, 3));
    }
  });
  after(async () => {
    await store?.close();
    await dir?.remove();
  });

  const encoded = (s: Parameters<typeof encodeSnapshot>[0]): string => Buffer.from(encodeSnapshot(s)).toString();

  it('stateAt(seq) by full replay matches the state evolved alongside the writes', async () => {
    for (const seq of [0, 1, 2, 499, 500, 501, REPLAY_PAGE, REPLAY_PAGE + 1, events.length]) {
      assert.equal(encoded(await stateAt(store, project, seq)), expected[seq], `seq ${seq}`);
    }
  });

  it('snapshot + replay gives the same state as full replay, from whichever snapshot is nearest', async () => {
    for (const at of [1000, 3000]) {
      const full = await replayInto(store, project, initialState(), at);
      await store.saveSnapshot(project, { seq: at, time: full.time, data: encodeSnapshot(full) });
    }
    for (const seq of [999, 1000, 1001, 2999, 3000, 4321, events.length]) {
      const { state, snapshotSeq } = await restore(store, project, seq);
      assert.equal(snapshotSeq, seq >= 3000 ? 3000 : seq >= 1000 ? 1000 : 0, `snapshot used for ${seq}`);
      assert.equal(encoded(state), expected[seq], `seq ${seq}`);
    }
  });

  it('ignores a snapshot it cannot read and replays in full instead', async () => {
    await store.saveSnapshot(project, { seq: 4000, time: events[3999]?.time ?? '', data: Buffer.from('{"v":99}') });
    const { state, snapshotSeq } = await restore(store, project, 4100);
    assert.equal(snapshotSeq, 0);
    assert.equal(encoded(state), expected[4100]);
  });

  it('seqAt(time) is the largest seq whose store time is at or before it', async () => {
    const times = events.map((e) => Date.parse(e.time));
    const expectedSeqAt = (t: number): number => {
      let seq = 0;
      for (const [i, time] of times.entries()) if (time <= t) seq = i + 1;
      return seq;
    };
    const probes = new Set<number>([(times[0] ?? 0) - 1, ...times.filter((_, i) => i % 397 === 0), ...times.filter((_, i) => i % 397 === 0).map((t) => t - 1), Date.now() + 1000]);
    for (const t of probes) assert.equal(await seqAt(store, project, new Date(t)), expectedSeqAt(t), new Date(t).toISOString());
    const distinct = new Set(times).size;
    assert.ok(distinct > 1, 'the events span several instants');
  });
});
