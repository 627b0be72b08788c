import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { RecordedEvent } from '../events/events.js';
import { deciderSpec } from '../testing/deciderSpec.js';
import { DomainError, type Command, type DomainErrorCode } from './commands.js';
import { decide } from './decide.js';
import { evolve } from './evolve.js';
import { initialState } from './initialState.js';
import { DEFAULT_LIMITS, type ProjectLimits } from './limits.js';
import { normalizePath } from './paths.js';
import { decodeSnapshot, encodeSnapshot } from './snapshotCodec.js';
import type { ProjectState } from './state.js';

const NOW = Date.parse('2026-11-26T10:00:00.000Z');
const hashOf = (text: string | Uint8Array): string => createHash('sha256').update(text).digest('hex');

/** Runs commands through decide+evolve as the workspace would, returning the state and every event. */
function run(commands: Command[], limits: ProjectLimits = DEFAULT_LIMITS, state: ProjectState = initialState()): { state: ProjectState; events: RecordedEvent[] } {
  const events: RecordedEvent[] = [];
  for (const command of commands) {
    for (const e of decide(command, state, limits, NOW, 'tester')) {
      const recorded = { ...e, actor: 'tester', seq: state.seq + 1, time: new Date(NOW + state.seq).toISOString() } as RecordedEvent;
      evolve(state, recorded);
      events.push(recorded);
    }
  }
  return { state, events };
}

/** The events `commands` record, to be the history a spec is given. */
function history(commands: Command[], limits: ProjectLimits = DEFAULT_LIMITS): RecordedEvent[] {
  return run(commands, limits).events;
}

const spec = deciderSpec({ now: NOW });

const write = (path: string, content = path): Command => ({ type: 'WriteFile', path, hash: hashOf(content), size: Buffer.byteLength(content) });
const mkdir = (path: string): Command => ({ type: 'MakeDirectory', path });

describe('normalizePath', () => {
  it('folds empty and "." components and gives "" for the root', () => {
    assert.equal(normalizePath('a//b/./c/'), 'a/b/c');
    assert.equal(normalizePath(''), '');
    assert.equal(normalizePath('.'), '');
    assert.equal(normalizePath('./'), '');
  });

  const hostile: Array<[string, string, DomainErrorCode]> = [
    ['..', '..', 'EINVAL'],
    ['/abs', '/abs', 'EINVAL'],
    ['a/../../b', 'a/../../b', 'EINVAL'],
    ['a/../b (no lexical resolving either)', 'a/../b', 'EINVAL'],
    ['NUL', 'a\0b', 'EINVAL'],
    ['256-byte name', 'x'.repeat(256), 'ENAMETOOLONG'],
    ['256-byte name in multibyte characters', `d/${'é'.repeat(128)}`, 'ENAMETOOLONG'],
    ['4097-byte path', `${'y'.repeat(200)}/`.repeat(20) + 'z'.repeat(77), 'ENAMETOOLONG'],
  ];
  for (const [label, path, code] of hostile) {
    it(`refuses ${label} with ${code}, emitting nothing`, () => {
      assert.throws(() => normalizePath(path), (e: unknown) => e instanceof DomainError && e.code === code);
      const given = spec.given(history([mkdir('d')]));
      given.when(write(path)).thenThrows(code);
      given.when(mkdir(path)).thenThrows(code);
      given.when({ type: 'Move', from: 'd', to: path }).thenThrows(code);
    });
  }

  it('accepts a 255-byte name and a 4096-byte path', () => {
    assert.equal(normalizePath('n'.repeat(255)).length, 255);
    const path = `${'y'.repeat(200)}/`.repeat(20) + 'z'.repeat(76);
    assert.equal(Buffer.byteLength(normalizePath(path)), 4096);
  });

  it('"." as a target is the root: a directory, so writes and deletes are refused', () => {
    const given = spec.given([]);
    given.when(write('.')).thenThrows('EISDIR');
    given.when({ type: 'Delete', path: '.' }).thenThrows('EISDIR');
    given.when(mkdir('.')).thenThrows('EEXIST');
    given.when({ type: 'RemoveDirectory', path: '.' }).thenThrows('EINVAL');
  });
});

describe('decide and evolve: files and directories', () => {
  it('writes need an existing parent directory (POSIX, no implicit mkdir)', () => {
    const given = spec.given(history([write('top.txt')]));
    given.when(write('missing/a.txt')).thenThrows('ENOENT');
    given.when(write('top.txt/a.txt')).thenThrows('ENOTDIR');
    given.when(mkdir('x/y')).thenThrows('ENOENT');
    const after = run([write('top.txt'), mkdir('x'), mkdir('x/y'), write('x/y/a.txt', 'A')]).state;
    const node = after.nodes.get('x/y/a.txt');
    assert.equal(node?.kind, 'file');
    assert.equal(node?.kind === 'file' && node.hash, hashOf('A'));
    assert.deepEqual([...(after.nodes.get('x') as { children: Set<string> }).children], ['y']);
  });

  it('keeps file count and total bytes through overwrite, delete, and move over a file', () => {
    const { state } = run([write('a', 'aaaa'), write('b', 'bb'), write('a', 'a')]);
    assert.equal(state.fileCount, 2);
    assert.equal(state.totalBytes, 3);
    run([{ type: 'Move', from: 'a', to: 'b' }], DEFAULT_LIMITS, state);
    assert.equal(state.fileCount, 1);
    assert.equal(state.totalBytes, 1);
    assert.equal(state.nodes.has('a'), false);
    run([{ type: 'Delete', path: 'b' }], DEFAULT_LIMITS, state);
    assert.equal(state.fileCount, 0);
    assert.equal(state.totalBytes, 0);
    assert.deepEqual([...state.nodes.keys()], ['']);
  });

  it('errno for the usual mistakes', () => {
    const given = spec.given(history([mkdir('d'), write('d/f'), write('g'), mkdir('e')]));
    given.when(mkdir('d')).thenThrows('EEXIST');
    given.when(mkdir('g')).thenThrows('EEXIST');
    given.when(write('d')).thenThrows('EISDIR');
    given.when({ type: 'Delete', path: 'd' }).thenThrows('EISDIR');
    given.when({ type: 'Delete', path: 'nope' }).thenThrows('ENOENT');
    given.when({ type: 'RemoveDirectory', path: 'd' }).thenThrows('ENOTEMPTY');
    given.when({ type: 'RemoveDirectory', path: 'g' }).thenThrows('ENOTDIR');
    given.when({ type: 'Move', from: 'nope', to: 'x' }).thenThrows('ENOENT');
    given.when({ type: 'Move', from: 'g', to: 'e' }).thenThrows('EISDIR');
    given.when({ type: 'Move', from: 'e', to: 'g' }).thenThrows('ENOTDIR');
    given.when({ type: 'Move', from: 'e', to: 'd' }).thenThrows('ENOTEMPTY');
    given.when({ type: 'Move', from: 'd', to: 'd/sub' }).thenThrows('EINVAL');
    given.when({ type: 'WriteFile', path: 'h', hash: 'not-a-hash', size: 1 }).thenThrows('EINVAL');
    given.when({ type: 'ChangeAttributes', path: 'nope', mode: 0o600 }).thenThrows('ENOENT');
    given.when({ type: 'Move', from: 'g', to: 'g' }).thenNothingHappened();
  });

  it('moves a directory with its whole subtree, and replaces an empty directory', () => {
    const { state } = run([mkdir('src'), mkdir('src/lib'), write('src/lib/a.ts', 'A'), write('src/b.ts', 'B'), mkdir('dst'), mkdir('dst/empty')]);
    run([{ type: 'Annotate', path: 'src/lib/a.ts', text: 'looks wrong' }, { type: 'Move', from: 'src', to: 'dst/empty' }], DEFAULT_LIMITS, state);
    assert.deepEqual([...state.nodes.keys()].sort(), ['', 'dst', 'dst/empty', 'dst/empty/b.ts', 'dst/empty/lib', 'dst/empty/lib/a.ts']);
    assert.deepEqual([...(state.nodes.get('') as { children: Set<string> }).children], ['dst']);
    const moved = state.nodes.get('dst/empty/lib/a.ts');
    assert.equal(moved?.kind === 'file' && moved.hash, hashOf('A'));
    assert.equal(state.annotations.get('dst/empty/lib/a.ts')?.[0]?.text, 'looks wrong');
    assert.equal(state.fileCount, 2);
    assert.equal(state.totalBytes, 2);
  });

  it('touches the parent directory mtime when entries come and go', () => {
    const { state } = run([mkdir('d')]);
    const before = state.nodes.get('d')?.mtimeMs;
    run([write('d/f')], DEFAULT_LIMITS, state);
    assert.ok((state.nodes.get('d')?.mtimeMs ?? 0) > (before ?? 0));
  });

  it('binary content is just a hash and a size', () => {
    const bytes = new Uint8Array([0, 255, 0, 10, 13, 0xc3, 0x28]);
    spec
      .given([])
      .when({ type: 'WriteFile', path: 'bin', hash: hashOf(bytes), size: bytes.length, mode: 0o100755 })
      .then([{ type: 'FileWritten', data: { path: 'bin', hash: hashOf(bytes), size: 7, mode: 0o755, mtimeMs: NOW } }]);
  });
});

describe('limits', () => {
  const small: ProjectLimits = { ...DEFAULT_LIMITS, maxFileBytes: 10, maxFiles: 3, maxProjectBytes: 15 };
  it('EFBIG over the file limit, ENOSPC over the entry count and project bytes', () => {
    const within = deciderSpec({ now: NOW, limits: small });
    const one = [write('a', '0123456789')];
    within.given(history(one, small)).when(write('b', '01234567890')).thenThrows('EFBIG');
    const two = [...one, write('b', '01234')];
    within.given(history(two, small)).when(write('c', '0')).thenThrows('ENOSPC');
    const full = [...two, write('b', '0123'), mkdir('d')]; // shrinking an existing file is always fine
    within.given(history(full, small)).when(mkdir('e')).thenThrows('ENOSPC');
    within.given(history(full, small)).when(write('e')).thenThrows('ENOSPC');
    assert.equal(run(full, small).state.totalBytes, 14);
  });

  it('bounds what sits beside the tree: annotations per path, context packages, their text', () => {
    const tight: ProjectLimits = { ...DEFAULT_LIMITS, maxAnnotationsPerPath: 2, maxContextPackages: 1, maxAnnotationBytes: 8 };
    const note = (text: string): Command => ({ type: 'Annotate', path: 'a', text });
    const pkg = (name: string, description?: string): Command => ({ type: 'CreateContextPackage', name, paths: ['a'], ...(description === undefined ? {} : { description }) });
    const within = deciderSpec({ now: NOW, limits: tight });
    const noted = within.given(history([write('a'), note('one'), note('two')], tight));
    noted.when(note('three')).thenThrows('ENOSPC');
    noted.when({ type: 'Annotate', path: 'a', text: 'x', tags: ['123456789'] }).thenThrows('EINVAL');
    noted.when(pkg('p', 'much too long')).thenThrows('EINVAL');
    within.given(history([write('a'), note('one'), note('two'), pkg('p', 'short')], tight)).when(pkg('q')).thenThrows('ENOSPC');
  });

  it('ENAMETOOLONG when moving a directory would push a path inside it over maxPathBytes', () => {
    const short: ProjectLimits = { ...DEFAULT_LIMITS, maxPathBytes: 12 };
    const tree = [mkdir('a'), mkdir('a/bb'), write('a/bb/cccc'), mkdir('dd')]; // 'a/bb/cccc' is 9 bytes
    deciderSpec({ now: NOW, limits: short }).given(history(tree, short)).when({ type: 'Move', from: 'a', to: 'dd/eee' }).thenThrows('ENAMETOOLONG'); // dd/eee/bb/cccc: 14
    const { state } = run([...tree, { type: 'Move', from: 'a', to: 'dd/e' }], short); // dd/e/bb/cccc: exactly 12
    assert.equal(state.nodes.get('dd/e/bb/cccc')?.kind, 'file');
  });
});

describe('evolve', () => {
  it('ignores unknown event types but advances seq', () => {
    const state = initialState();
    evolve(state, { type: 'SomethingNew', data: {}, actor: 'x', seq: 1, time: '2026-11-26T10:00:00.000Z' } as unknown as RecordedEvent);
    assert.equal(state.seq, 1);
    assert.deepEqual([...state.nodes.keys()], ['']);
  });

  it('repairs rather than throws on events the rules would not emit', () => {
    const state = initialState();
    evolve(state, { type: 'FileWritten', data: { path: 'x/y/z', hash: hashOf('z'), size: 1, mode: 0o644, mtimeMs: NOW }, actor: 'x', seq: 1, time: '2026-11-26T10:00:00.000Z' });
    assert.equal(state.nodes.get('x/y')?.kind, 'directory');
    evolve(state, { type: 'FileWritten', data: { path: 'x', hash: hashOf('x'), size: 2, mode: 0o644, mtimeMs: NOW }, actor: 'x', seq: 2, time: '2026-11-26T10:00:00.000Z' });
    assert.deepEqual([...state.nodes.keys()].sort(), ['', 'x']);
    assert.equal(state.fileCount, 1);
    assert.equal(state.totalBytes, 2);
  });
});

describe('snapshot codec', () => {
  it('round-trips a state exactly', () => {
    const { state } = run([
      mkdir('d'),
      write('d/f', 'hello'),
      { type: 'CreateSymlink', path: 'link', target: 'd/f' },
      { type: 'Annotate', path: 'd/f', text: 'note', line: 3, tags: ['t'] },
      { type: 'CreateContextPackage', name: 'pkg', paths: ['d'] },
      { type: 'StartAgentSession', sessionId: 's1', agent: 'bot' },
      { type: 'RequestValidation', requestId: 'r1', agent: 'bot', tool: 'bash', input: { command: 'ls' }, deadlineMs: NOW + 1000 },
    ]);
    assert.deepEqual(decodeSnapshot(encodeSnapshot(state)), state);
    assert.deepEqual(state.contextPackages.get('pkg')?.files, [{ path: 'd/f', hash: hashOf('hello'), size: 5 }]);
  });
});
