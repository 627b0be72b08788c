import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { RecordedEvent } from '../events/events.js';
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

function refuses(code: DomainErrorCode, command: Command, state: ProjectState, limits: ProjectLimits = DEFAULT_LIMITS): void {
  const before = encodeSnapshot(state);
  assert.throws(() => decide(command, state, limits, NOW), (e: unknown) => e instanceof DomainError && e.code === code, `${JSON.stringify(command)} should be ${code}`);
  assert.deepEqual(encodeSnapshot(state), before, 'a refused command must not change the state');
}

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
      const { state } = run([mkdir('d')]);
      refuses(code, write(path), state);
      refuses(code, mkdir(path), state);
      refuses(code, { type: 'Move', from: 'd', to: path }, state);
    });
  }

  it('accepts a 255-byte name and a 4096-byte path', () => {
    assert.equal(normalizePath('n'.repeat(255)).length, 255);
    const path = `${'y'.repeat(200)}/`.repeat(20) + 'z'.repeat(76);
    assert.equal(Buffer.byteLength(normalizePath(path)), 4096);
  });

  it('"." as a target is the root: a directory, so writes and deletes are refused', () => {
    const { state } = run([]);
    refuses('EISDIR', write('.'), state);
    refuses('EISDIR', { type: 'Delete', path: '.' }, state);
    refuses('EEXIST', mkdir('.'), state);
    refuses('EINVAL', { type: 'RemoveDirectory', path: '.' }, state);
  });
});

describe('decide and evolve: files and directories', () => {
  it('writes need an existing parent directory (POSIX, no implicit mkdir)', () => {
    const { state } = run([write('top.txt')]);
    refuses('ENOENT', write('missing/a.txt'), state);
    refuses('ENOTDIR', write('top.txt/a.txt'), state);
    refuses('ENOENT', mkdir('x/y'), state);
    const after = run([mkdir('x'), mkdir('x/y'), write('x/y/a.txt', 'A')], DEFAULT_LIMITS, state).state;
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
    const { state } = run([mkdir('d'), write('d/f'), write('g'), mkdir('e')]);
    refuses('EEXIST', mkdir('d'), state);
    refuses('EEXIST', mkdir('g'), state);
    refuses('EISDIR', write('d'), state);
    refuses('EISDIR', { type: 'Delete', path: 'd' }, state);
    refuses('ENOENT', { type: 'Delete', path: 'nope' }, state);
    refuses('ENOTEMPTY', { type: 'RemoveDirectory', path: 'd' }, state);
    refuses('ENOTDIR', { type: 'RemoveDirectory', path: 'g' }, state);
    refuses('ENOENT', { type: 'Move', from: 'nope', to: 'x' }, state);
    refuses('EISDIR', { type: 'Move', from: 'g', to: 'e' }, state);
    refuses('ENOTDIR', { type: 'Move', from: 'e', to: 'g' }, state);
    refuses('ENOTEMPTY', { type: 'Move', from: 'e', to: 'd' }, state);
    refuses('EINVAL', { type: 'Move', from: 'd', to: 'd/sub' }, state);
    refuses('EINVAL', { type: 'WriteFile', path: 'h', hash: 'not-a-hash', size: 1 }, state);
    refuses('ENOENT', { type: 'ChangeAttributes', path: 'nope', mode: 0o600 }, state);
    assert.deepEqual(decide({ type: 'Move', from: 'g', to: 'g' }, state, DEFAULT_LIMITS, NOW), []);
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
    const { events } = run([{ type: 'WriteFile', path: 'bin', hash: hashOf(bytes), size: bytes.length, mode: 0o100755 }]);
    assert.deepEqual(events[0]?.data, { path: 'bin', hash: hashOf(bytes), size: 7, mode: 0o755, mtimeMs: NOW });
  });
});

describe('limits', () => {
  const small: ProjectLimits = { ...DEFAULT_LIMITS, maxFileBytes: 10, maxFiles: 3, maxProjectBytes: 15 };
  it('EFBIG over the file limit, ENOSPC over the entry count and project bytes', () => {
    const { state } = run([write('a', '0123456789')], small);
    refuses('EFBIG', write('b', '01234567890'), state, small);
    run([write('b', '01234')], small, state);
    refuses('ENOSPC', write('c', '0'), state, small);
    run([write('b', '0123')], small, state); // shrinking an existing file is always fine
    run([mkdir('d')], small, state);
    refuses('ENOSPC', mkdir('e'), state, small);
    refuses('ENOSPC', write('e'), state, small);
    assert.equal(state.totalBytes, 14);
  });

  it('bounds what sits beside the tree: annotations per path, context packages, their text', () => {
    const tight: ProjectLimits = { ...DEFAULT_LIMITS, maxAnnotationsPerPath: 2, maxContextPackages: 1, maxAnnotationBytes: 8 };
    const note = (text: string): Command => ({ type: 'Annotate', path: 'a', text });
    const pkg = (name: string, description?: string): Command => ({ type: 'CreateContextPackage', name, paths: ['a'], ...(description === undefined ? {} : { description }) });
    const { state } = run([write('a'), note('one'), note('two')], tight);
    refuses('ENOSPC', note('three'), state, tight);
    refuses('EINVAL', { type: 'Annotate', path: 'a', text: 'x', tags: ['123456789'] }, state, tight);
    refuses('EINVAL', pkg('p', 'much too long'), state, tight);
    run([pkg('p', 'short')], tight, state);
    refuses('ENOSPC', pkg('q'), state, tight);
  });

  it('ENAMETOOLONG when moving a directory would push a path inside it over maxPathBytes', () => {
    const short: ProjectLimits = { ...DEFAULT_LIMITS, maxPathBytes: 12 };
    const { state } = run([mkdir('a'), mkdir('a/bb'), write('a/bb/cccc'), mkdir('dd')], short); // 'a/bb/cccc' is 9 bytes
    refuses('ENAMETOOLONG', { type: 'Move', from: 'a', to: 'dd/eee' }, state, short); // dd/eee/bb/cccc: 14
    run([{ type: 'Move', from: 'a', to: 'dd/e' }], short, state); // dd/e/bb/cccc: exactly 12
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
