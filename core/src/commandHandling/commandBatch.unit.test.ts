import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initialState } from '../aggregate/initialState.js';
import { DEFAULT_LIMITS } from '../aggregate/limits.js';
import type { NewEvent } from '../events/events.js';
import { fitTogether, leadingBatch, type Queued } from './commandBatch.js';

const HASH = 'a'.repeat(64);
const write = (path: string, bytes = 1): Queued => ({ command: { type: 'WriteFile', path, hash: HASH, size: bytes }, blobs: [{ hash: HASH, content: new Uint8Array(bytes) }] });
const batch = (...queue: Queued[]): number => leadingBatch(queue, DEFAULT_LIMITS);

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

  it('keeps a batch near 1 MiB of content and 256 commands, however large its first member', () => {
    assert.equal(batch(write('a', 2 << 20), write('b')), 1);
    assert.equal(batch(write('a', 600 << 10), write('b', 400 << 10), write('c', 100 << 10)), 2);
    assert.equal(batch(...Array.from({ length: 300 }, (_, i) => write(`f${i}`))), 256);
  });
});

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
