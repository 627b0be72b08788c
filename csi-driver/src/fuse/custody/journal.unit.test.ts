import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { JournalFile, readJournal } from './journal.js';

describe('custody journal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lhb-journal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('replays nodes and descriptors, names with spaces and newlines included, and compacts on resume', () => {
    const path = join(dir, 'replay');
    const journal = JournalFile.create(path);
    journal.added({ id: 2, parent: 1, name: 'a dir', lookups: 1, open: 0 });
    journal.added({ id: 3, parent: 2, name: 'line\nbreak "quoted"', lookups: 1, open: 0 });
    journal.added({ id: 4, parent: 1, name: 'gone', lookups: 1, open: 0 });
    journal.dropped(4);
    journal.opened(7, 3, 2, '123-1');
    journal.opened(8, 2, 0, undefined);
    journal.closed(8);
    journal.close();
    const { journal: resumed, state, skipped } = JournalFile.resume(path);
    resumed.close();
    assert.equal(skipped, 0);
    assert.deepEqual([...state.nodes.values()], [
      { id: 2, parent: 1, name: 'a dir' },
      { id: 3, parent: 2, name: 'line\nbreak "quoted"' },
    ]);
    assert.deepEqual([...state.handles.values()], [{ fh: 7, nodeId: 3, flags: 2, mirror: '123-1' }]);
    assert.equal(readFileSync(path, 'utf8').split('\n').length, 4, 'compacted: two nodes, one descriptor');
  });

  it('skips a damaged line anywhere and a torn last line, keeping everything else', () => {
    const path = join(dir, 'damaged');
    writeFileSync(path, ['n 2 1 "ok"', 'n 99 1 "torn', 'h x 2 0 null', 'zz', 'n 3 1 "also ok"', 'h 5 3 0 null', 'n 4 1 "half'].join('\n'));
    const state = readJournal(path);
    assert.equal(state.skipped, 3);
    assert.deepEqual([...state.nodes.keys()], [2, 3], 'the torn last line is not a node');
    assert.deepEqual([...state.handles.keys()], [5]);
  });

  it('a predecessor\'s last append that never finished leaves no line behind', () => {
    const path = join(dir, 'torn');
    const journal = JournalFile.create(path);
    journal.added({ id: 2, parent: 1, name: 'whole', lookups: 1, open: 0 });
    journal.close();
    appendFileSync(path, 'n 3 1 "cut of');
    assert.deepEqual([...readJournal(path).nodes.keys()], [2]);
  });
});
