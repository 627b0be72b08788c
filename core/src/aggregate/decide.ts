import { isContentHash } from '../events/contentHash.js';
import type { BridgeEvent, EpochMs } from '../events/events.js';
import { DomainError, type Command } from './commands.js';
import { DEFAULT_DIRECTORY_MODE, DEFAULT_FILE_MODE } from './initialState.js';
import type { ProjectLimits } from './limits.js';
import { isWithin, joinPath, normalizePath, parentOf } from './paths.js';
import type { ProjectState, TreeNode } from './state.js';
import { storedMode } from './modes.js';

/**
 * The project's rules: turns a command into the events that record it, or refuses with a
 * `DomainError` and emits nothing. Pure: everything it needs (state, limits, clock, actor) is
 * passed in, so a retry after a version conflict simply decides again on the newer state.
 * `actor` is only used where an event records who decided (ValidationDecided.by). The workspace
 * adds the actor to each event and the store its seq and time.
 */
export function decide(command: Command, state: ProjectState, limits: ProjectLimits, now: EpochMs, actor = 'unknown'): BridgeEvent[] {
  const norm = (p: string): string => normalizePath(p, limits);
  switch (command.type) {
    case 'WriteFile': {
      const path = norm(command.path);
      requireParentDirectory(state, path);
      if (!isContentHash(command.hash)) throw new DomainError('EINVAL', 'content hash must be a lowercase hex sha256');
      if (!Number.isSafeInteger(command.size) || command.size < 0) throw new DomainError('EINVAL', 'size must be a non-negative integer');
      if (command.size > limits.maxFileBytes) {
        throw new DomainError('EFBIG', `${path}: ${command.size} bytes is over the ${limits.maxFileBytes}-byte file limit`);
      }
      const existing = state.nodes.get(path);
      if (existing?.kind === 'directory') throw new DomainError('EISDIR', `${path} is a directory`);
      if (!existing) requireRoomForEntries(state, limits, 1);
      const freed = existing?.kind === 'file' ? existing.size : 0;
      if (state.totalBytes - freed + command.size > limits.maxProjectBytes) {
        throw new DomainError('ENOSPC', `writing ${path} would take the project over its ${limits.maxProjectBytes}-byte limit`);
      }
      const mode = validMode(command.mode) ?? (existing?.kind === 'file' ? existing.mode : DEFAULT_FILE_MODE);
      return [{ type: 'FileWritten', data: { path, hash: command.hash, size: command.size, mode, mtimeMs: command.mtimeMs ?? now } }];
    }
    case 'CreateSymlink': {
      const path = norm(command.path);
      requireParentDirectory(state, path);
      if (state.nodes.has(path)) throw new DomainError('EEXIST', `${path} already exists`);
      if (command.target === '' || command.target.includes('\0')) throw new DomainError('EINVAL', 'symlink target must be non-empty and without NUL');
      if (Buffer.byteLength(command.target) > limits.maxPathBytes) throw new DomainError('ENAMETOOLONG', 'symlink target is too long');
      requireRoomForEntries(state, limits, 1);
      return [{ type: 'SymlinkCreated', data: { path, target: command.target, mtimeMs: now } }];
    }
    case 'Delete': {
      const path = norm(command.path);
      const node = requireNode(state, path);
      if (node.kind === 'directory') throw new DomainError('EISDIR', `${path || '/'} is a directory`);
      return [{ type: 'PathDeleted', data: { path } }];
    }
    case 'MakeDirectory': {
      const path = norm(command.path);
      if (state.nodes.has(path)) throw new DomainError('EEXIST', `${path || '/'} already exists`);
      requireParentDirectory(state, path);
      requireRoomForEntries(state, limits, 1);
      return [{ type: 'DirectoryCreated', data: { path, mode: validMode(command.mode) ?? DEFAULT_DIRECTORY_MODE, mtimeMs: now } }];
    }
    case 'RemoveDirectory': {
      const path = norm(command.path);
      if (path === '') throw new DomainError('EINVAL', 'cannot remove the project root');
      const node = requireNode(state, path);
      if (node.kind !== 'directory') throw new DomainError('ENOTDIR', `${path} is not a directory`);
      if (node.children.size > 0) throw new DomainError('ENOTEMPTY', `${path} is not empty`);
      return [{ type: 'DirectoryRemoved', data: { path } }];
    }
    case 'Move':
      return decideMove(state, limits, norm(command.from), norm(command.to));
    case 'ChangeAttributes': {
      const path = norm(command.path);
      requireNode(state, path);
      const mode = validMode(command.mode);
      if (command.mode !== undefined && mode === undefined) throw new DomainError('EINVAL', 'mode must be an integer 0-0o7777');
      if (mode === undefined && command.mtimeMs === undefined) return [];
      const data: { path: string; mode?: number; mtimeMs?: EpochMs } = { path };
      if (mode !== undefined) data.mode = mode;
      if (command.mtimeMs !== undefined) data.mtimeMs = command.mtimeMs;
      return [{ type: 'AttributesChanged', data }];
    }
    case 'Annotate': {
      const path = norm(command.path);
      requireNode(state, path);
      if (command.text === '' || Buffer.byteLength(command.text) > limits.maxAnnotationBytes) {
        throw new DomainError('EINVAL', `annotation text must be 1-${limits.maxAnnotationBytes} bytes`);
      }
      if (command.tags !== undefined && Buffer.byteLength(command.tags.join('')) > limits.maxAnnotationBytes) {
        throw new DomainError('EINVAL', `annotation tags must be at most ${limits.maxAnnotationBytes} bytes in all`);
      }
      if ((state.annotations.get(path)?.length ?? 0) >= limits.maxAnnotationsPerPath) {
        throw new DomainError('ENOSPC', `${path} already has ${limits.maxAnnotationsPerPath} annotations`);
      }
      // The id is the sequence the event will get: unique, and re-derived if a conflict forces a retry.
      const data: { path: string; id: string; text: string; line?: number; tags?: string[] } = { path, id: String(state.seq + 1), text: command.text };
      if (command.line !== undefined) data.line = command.line;
      if (command.tags !== undefined) data.tags = command.tags;
      return [{ type: 'AnnotationAdded', data }];
    }
    case 'CreateContextPackage': {
      const name = norm(command.name);
      if (name === '' || name.includes('/')) throw new DomainError('EINVAL', 'a context package name is one path component');
      if (state.contextPackages.has(name)) throw new DomainError('EEXIST', `context package ${name} already exists`);
      if (state.contextPackages.size >= limits.maxContextPackages) throw new DomainError('ENOSPC', `the project already has ${limits.maxContextPackages} context packages`);
      if (command.description !== undefined && Buffer.byteLength(command.description) > limits.maxAnnotationBytes) {
        throw new DomainError('EINVAL', `a context package description must be at most ${limits.maxAnnotationBytes} bytes`);
      }
      const files = packageFiles(state, command.paths.map(norm));
      const data: { name: string; description?: string; to?: string; from?: string; files: typeof files } = { name, from: actor, files };
      if (command.description !== undefined) data.description = command.description;
      if (command.to !== undefined) data.to = command.to;
      return [{ type: 'ContextPackageCreated', data }];
    }
    case 'StartAgentSession': {
      if (command.sessionId === '') throw new DomainError('EINVAL', 'sessionId is empty');
      if (state.sessions.has(command.sessionId)) throw new DomainError('EEXIST', `session ${command.sessionId} is already running`);
      const data: { sessionId: string; agent: string; node?: string } = { sessionId: command.sessionId, agent: command.agent };
      if (command.node !== undefined) data.node = command.node;
      return [{ type: 'AgentSessionStarted', data }];
    }
    case 'EndAgentSession':
      if (!state.sessions.has(command.sessionId)) throw new DomainError('ENOENT', `no session ${command.sessionId}`);
      return [{ type: 'AgentSessionEnded', data: { sessionId: command.sessionId } }];
    case 'RequestValidation': {
      if (command.requestId === '') throw new DomainError('EINVAL', 'requestId is empty');
      if (state.pendingValidations.has(command.requestId)) throw new DomainError('EEXIST', `validation ${command.requestId} is already pending`);
      const { requestId, agent, tool, input, deadlineMs } = command;
      return [{ type: 'ValidationRequested', data: { requestId, agent, tool, input, deadlineMs } }];
    }
    case 'DecideValidation':
      if (!state.pendingValidations.has(command.requestId)) throw new DomainError('ENOENT', `no pending validation ${command.requestId}`);
      return [{ type: 'ValidationDecided', data: { requestId: command.requestId, decision: command.decision, reason: command.reason, by: actor } }];
    default:
      throw new DomainError('EINVAL', `unknown command ${(command as { type?: unknown }).type as string}`);
  }
}

/** rename(2): replaces a file, or an empty directory with a directory; never moves a directory into itself. */
function decideMove(state: ProjectState, limits: ProjectLimits, from: string, to: string): BridgeEvent[] {
  const source = requireNode(state, from);
  if (from === '' || to === '') throw new DomainError('EINVAL', 'cannot move the project root or onto it');
  if (from === to) return [];
  if (source.kind === 'directory' && isWithin(to, from)) throw new DomainError('EINVAL', `cannot move ${from} into itself`);
  // `to` itself was checked by normalizePath; a directory's descendants move with it, and one
  // pushed past the limit could no longer be looked up, stat'ed or deleted.
  if (source.kind === 'directory') {
    const grown = longestPathBytes(state, from) - Buffer.byteLength(from) + Buffer.byteLength(to);
    if (grown > limits.maxPathBytes) {
      throw new DomainError('ENAMETOOLONG', `moving ${from} to ${to} would make a path inside it ${grown} bytes, over ${limits.maxPathBytes}`);
    }
  }
  requireParentDirectory(state, to);
  const target = state.nodes.get(to);
  if (target) {
    if (target.kind === 'directory') {
      if (source.kind !== 'directory') throw new DomainError('EISDIR', `${to} is a directory`);
      if (target.children.size > 0) throw new DomainError('ENOTEMPTY', `${to} is not empty`);
    } else if (source.kind === 'directory') {
      throw new DomainError('ENOTDIR', `${to} is not a directory`);
    }
  }
  return [{ type: 'PathMoved', data: { from, to } }];
}

/** The byte length of the longest path at or beneath `path`. */
function longestPathBytes(state: ProjectState, path: string): number {
  let longest = Buffer.byteLength(path);
  const node = state.nodes.get(path);
  if (node?.kind === 'directory') for (const child of node.children) longest = Math.max(longest, longestPathBytes(state, joinPath(path, child)));
  return longest;
}

function requireNode(state: ProjectState, path: string): TreeNode {
  const node = state.nodes.get(path);
  if (node) return node;
  requireParentDirectory(state, path);
  throw new DomainError('ENOENT', `${path} does not exist`);
}

/** ENOENT when an ancestor is missing, ENOTDIR when one is not a directory (as path resolution does). */
function requireParentDirectory(state: ProjectState, path: string): void {
  const parent = parentOf(path);
  if (parent === undefined) return;
  const node = state.nodes.get(parent);
  if (node?.kind === 'directory') return;
  if (node) throw new DomainError('ENOTDIR', `${parent} is not a directory`);
  requireParentDirectory(state, parent);
  throw new DomainError('ENOENT', `directory ${parent} does not exist`);
}

/** `maxFiles` bounds every entry (files, directories, symlinks) so no kind of node grows without limit. */
function requireRoomForEntries(state: ProjectState, limits: ProjectLimits, added: number): void {
  const entries = state.nodes.size - 1;
  if (entries + added > limits.maxFiles) throw new DomainError('ENOSPC', `the project already has ${entries} of its ${limits.maxFiles} entries`);
}

function validMode(mode: number | undefined): number | undefined {
  if (mode === undefined || !Number.isInteger(mode) || mode < 0) return undefined;
  return storedMode(mode);
}

/** The files a context package pins: each named file, and every file beneath each named directory. */
function packageFiles(state: ProjectState, paths: string[]): Array<{ path: string; hash: string; size: number }> {
  const files = new Map<string, { path: string; hash: string; size: number }>();
  const visit = (path: string): void => {
    const node = state.nodes.get(path);
    if (node?.kind === 'file') files.set(path, { path, hash: node.hash, size: node.size });
    else if (node?.kind === 'directory') for (const child of node.children) visit(joinPath(path, child));
  };
  for (const path of paths) {
    const node = requireNode(state, path);
    if (node.kind === 'symlink') throw new DomainError('EINVAL', `${path} is a symlink; name its target`);
    visit(path);
  }
  if (files.size === 0) throw new DomainError('EINVAL', 'a context package needs at least one file');
  return [...files.values()];
}
