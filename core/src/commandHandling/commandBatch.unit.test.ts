import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Command } from '../aggregate/commands.js';
import { decide } from '../aggregate/decide.js';
import { evolve } from '../aggregate/evolve.js';
import { initialState } from '../aggregate/initialState.js';
import type { ProjectState } from '../aggregate/state.js';
import { DEFAULT_LIMITS } from '../aggregate/limits.js';
import type { NewEvent } from '../events/events.js';
import { fitTogether, leadingBatch, type Queued } from './commandBatch.js';

const HASH = 'a'.repeat(64);
const write = (path: string, bytes = 1): Queued => ({ command: { type: 'WriteFile', path, hash: HASH, size: bytes }, blobs: [{ hash: HASH, content: new Uint8Array(bytes) }] });
const batch = (...queue: Queued[]): number => leadingBatch(queue, DEFAULT_LIMITS);
const attrs = (path: string, mode = 0o600): Queued => ({ command: { type: 'ChangeAttributes', path, mode } });
const other = (command: Command): Queued => ({ command });

describe('leadingBatch: which queued commands may share one append', () => {
  it('takes file writes to distinct paths, sibling or in other directories', () => {
    assert.equal(batch(write('a/x'), write('a/y'), write('b/z'), write('c')), 4);
  });

  it('stops at a second write to one path (spelled differently too) and at a write to an ancestor of another', () => {
    assert.equal(batch(write('a'), write('b'), write('./a')), 2);
    assert.equal(batch(write('d/x'), write('d')), 1);
    assert.equal(batch(write('d'), write('d/x')), 1);
    assert.equal(batch(write('d/e/x'), write('d/y'), write('d/e')), 2);
  });

  it('stops at any other command, and at a path that does not normalize; a lone command is always a batch of one', () => {
    assert.equal(batch(write('a'), { command: { type: 'Delete', path: 'b' } }, write('c')), 1);
    assert.equal(batch({ command: { type: 'MakeDirectory', path: 'd' } }, write('d/x')), 1);
    assert.equal(batch(write('a'), write('../etc/passwd'), write('c')), 1);
    assert.equal(batch(write('../etc/passwd')), 1);
  });

  it('takes attribute changes, several on one path too, with writes of other paths', () => {
    assert.equal(batch(attrs('a'), attrs('a', 0o755), attrs('b'), write('c'), attrs('d')), 5);
    assert.equal(batch(attrs('d'), write('d/x'), attrs('e')), 3, 'a directory changed and a file written in it');
  });

  it('stops at a write of a path whose attributes change before it, and at a change of a path written before it', () => {
    assert.equal(batch(attrs('a'), write('a')), 1, 'the write keeps the mode it finds');
    assert.equal(batch(write('a'), attrs('a')), 1, 'the write may be creating it');
  });

  it('ends a batch of attribute changes with one namespace change, never one that follows a write', () => {
    assert.equal(batch(attrs('t'), attrs('t', 0o644), other({ type: 'Move', from: 't', to: 'f' }), attrs('f')), 3);
    for (const command of [{ type: 'Delete', path: 't' }, { type: 'MakeDirectory', path: 'n' }, { type: 'RemoveDirectory', path: 'e' }, { type: 'CreateSymlink', path: 'l', target: 't' }] as Command[]) {
      assert.equal(batch(attrs('t'), other(command), attrs('x')), 2, command.type);
    }
    assert.equal(batch(attrs('t'), write('w'), other({ type: 'Move', from: 't', to: 'f' })), 2);
    assert.equal(batch(attrs('t'), other({ type: 'Annotate', path: 't', text: 'x' })), 1);
  });

  it('decides a batch on one head state exactly as in turn (rsync, tar, cp -a sequences)', () => {
    const head = (): ProjectState => {
      const state = initialState();
      for (const event of [
        { type: 'DirectoryCreated', data: { path: 'd', mode: 0o755, mtimeMs: 1 } },
        { type: 'DirectoryCreated', data: { path: 'e', mode: 0o755, mtimeMs: 1 } },
        { type: 'FileWritten', data: { path: 't', hash: HASH, size: 1, mode: 0o600, mtimeMs: 1 } },
        { type: 'FileWritten', data: { path: 'd/x', hash: HASH, size: 1, mode: 0o644, mtimeMs: 1 } },
      ] as const) {
        evolve(state, { ...event, seq: state.seq + 1, time: new Date(1000).toISOString(), actor: 't' } as never);
      }
      return state;
    };
    const change = (path: string, mode?: number, mtimeMs?: number): Queued => ({ command: { type: 'ChangeAttributes', path, ...(mode === undefined ? {} : { mode }), ...(mtimeMs === undefined ? {} : { mtimeMs }) } });
    const sequences: Queued[][] = [
      [change('t', 0o644), change('t', undefined, 5), other({ type: 'Move', from: 't', to: 'f' })],
      [change('t', 0o755), change('t', 0o600), other({ type: 'Delete', path: 't' })],
      [change('d', undefined, 7), write('d/y'), change('d/x', 0o640), write('w')],
      [change('d/x', 0o600), change('d', 0o700), other({ type: 'Move', from: 'd', to: 'e' })],
      [change('missing', 0o600), change('t', 0o640), other({ type: 'MakeDirectory', path: 't' })],
      [change('e', undefined, 9), other({ type: 'RemoveDirectory', path: 'e' })],
    ];
    const applied = (state: ProjectState, events: ReturnType<typeof decide>): void => {
      for (const event of events) evolve(state, { ...event, seq: state.seq + 1, time: new Date(2000).toISOString(), actor: 't' } as never);
    };
    for (const sequence of sequences) {
      assert.equal(batch(...sequence), sequence.length, JSON.stringify(sequence));
      const inTurn = head();
      const together = head();
      const decided: ReturnType<typeof decide> = [];
      for (const { command } of sequence) {
        applied(inTurn, attempt(() => decide(command, inTurn, DEFAULT_LIMITS, 3000)));
        decided.push(...attempt(() => decide(command, together, DEFAULT_LIMITS, 3000)));
      }
      applied(together, decided);
      assert.deepEqual(together, inTurn, JSON.stringify(sequence));
    }
  });

  it('keeps a batch near 1 MiB of content and 256 commands, however large its first member', () => {
    assert.equal(batch(write('a', 2 << 20), write('b')), 1);
    assert.equal(batch(write('a', 600 << 10), write('b', 400 << 10), write('c', 100 << 10)), 2);
    assert.equal(batch(...Array.from({ length: 300 }, (_, i) => write(`f${i}`))), 256);
  });
});

/** A refused command decides nothing, in a batch as alone. */
function attempt(decided: () => ReturnType<typeof decide>): ReturnType<typeof decide> {
  try {
    return decided();
  } catch {
    return [];
  }
}

describe('fitTogether: the totals of a batch whose members each fit alone', () => {
  const written = (path: string, size: number): NewEvent => ({ type: 'FileWritten', data: { path, hash: HASH, size, mode: 0o644, mtimeMs: 0 }, actor: 't' });

  it('counts new entries and the bytes a write adds over what it replaces', () => {
    const state = initialState();
    state.nodes.set('old', { kind: 'file', hash: HASH, size: 10, mode: 0o644, mtimeMs: 0, ctimeMs: 0 });
    state.totalBytes = 10;
    state.fileCount = 1;
    const limits = { ...DEFAULT_LIMITS, maxFiles: 3, maxProjectBytes: 30 };
    assert.equal(fitTogether(state, limits, [written('a', 10), written('b', 10)]), true);
    assert.equal(fitTogether(state, limits, [written('a', 1), written('b', 1), written('c', 1)]), false, 'four entries');
    assert.equal(fitTogether(state, limits, [written('old', 15), written('a', 15)]), true, 'old replaced: 30 bytes');
    assert.equal(fitTogether(state, limits, [written('old', 15), written('a', 16)]), false, '31 bytes');
  });
});
