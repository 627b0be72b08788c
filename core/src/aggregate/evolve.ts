import type { RecordedEvent } from '../events/events.js';
import { DEFAULT_DIRECTORY_MODE } from './initialState.js';
import { joinPath, nameOf, parentOf } from './paths.js';
import type { DirectoryNode, ProjectState, TreeNode } from './state.js';

/**
 * Applies one recorded event to `state` IN PLACE and returns it (see state.ts for why). Unknown
 * event types are skipped so old readers survive new logs. It never throws on an event that the
 * rules would not have produced (a foreign writer, a hand-edited log): it repairs the tree so the
 * projection stays a tree (missing parents appear as directories, a replaced directory takes its
 * subtree with it) rather than wedging every reader of the project.
 */
export function evolve(state: ProjectState, event: RecordedEvent): ProjectState {
  const at = Date.parse(event.time);
  const eventMs = Number.isNaN(at) ? 0 : at;
  switch (event.type) {
    case 'FileWritten': {
      const { path, hash, size, mode, mtimeMs } = event.data;
      place(state, path, { kind: 'file', hash, size, mode, mtimeMs, ctimeMs: eventMs }, eventMs);
      break;
    }
    case 'SymlinkCreated': {
      const { path, target, mtimeMs } = event.data;
      place(state, path, { kind: 'symlink', target, mtimeMs, ctimeMs: eventMs }, eventMs);
      break;
    }
    case 'DirectoryCreated': {
      const { path, mode, mtimeMs } = event.data;
      if (state.nodes.get(path)?.kind !== 'directory') {
        place(state, path, { kind: 'directory', mode, mtimeMs, ctimeMs: eventMs, children: new Set() }, eventMs);
      }
      break;
    }
    case 'PathDeleted':
    case 'DirectoryRemoved':
      if (event.data.path !== '') removeSubtree(state, event.data.path, eventMs);
      break;
    case 'PathMoved':
      move(state, event.data.from, event.data.to, eventMs);
      break;
    case 'AttributesChanged': {
      const node = state.nodes.get(event.data.path);
      if (node) {
        if (event.data.mode !== undefined && node.kind !== 'symlink') node.mode = event.data.mode;
        if (event.data.mtimeMs !== undefined) node.mtimeMs = event.data.mtimeMs;
        node.ctimeMs = eventMs;
      }
      break;
    }
    case 'AnnotationAdded': {
      const { path, id, text, line, tags } = event.data;
      const list = state.annotations.get(path) ?? [];
      const annotation: (typeof list)[number] = { id, text, actor: event.actor, time: event.time };
      if (line !== undefined) annotation.line = line;
      if (tags !== undefined) annotation.tags = tags;
      list.push(annotation);
      state.annotations.set(path, list);
      break;
    }
    case 'ContextPackageCreated':
      state.contextPackages.set(event.data.name, { ...event.data, actor: event.actor, time: event.time });
      break;
    case 'AgentSessionStarted': {
      const { sessionId, agent, node } = event.data;
      state.sessions.set(sessionId, node === undefined ? { agent, startedAt: event.time } : { agent, startedAt: event.time, node });
      break;
    }
    case 'AgentSessionEnded':
      state.sessions.delete(event.data.sessionId);
      break;
    case 'ValidationRequested': {
      const { requestId, agent, tool, deadlineMs } = event.data;
      state.pendingValidations.set(requestId, { agent, tool, deadlineMs });
      break;
    }
    case 'ValidationDecided':
      state.pendingValidations.delete(event.data.requestId);
      break;
    default:
      break;
  }
  state.seq = event.seq;
  state.time = event.time;
  return state;
}

/** Puts `node` at `path`, replacing whatever was there, and touches the parent directory. */
function place(state: ProjectState, path: string, node: TreeNode, eventMs: number): void {
  if (path === '') return; // the root is always a directory
  if (state.nodes.has(path)) removeSubtree(state, path, eventMs);
  attach(state, path, eventMs);
  state.nodes.set(path, node);
  count(state, node, +1);
}

function ensureDirectory(state: ProjectState, path: string, eventMs: number): DirectoryNode {
  const existing = state.nodes.get(path);
  if (existing?.kind === 'directory') return existing;
  const dir: DirectoryNode = { kind: 'directory', mode: DEFAULT_DIRECTORY_MODE, mtimeMs: eventMs, ctimeMs: eventMs, children: new Set() };
  place(state, path, dir, eventMs);
  return dir;
}

function removeSubtree(state: ProjectState, path: string, eventMs: number): void {
  const node = state.nodes.get(path);
  if (!node) return;
  for (const p of subtree(state, path)) {
    const n = state.nodes.get(p);
    if (n) count(state, n, -1);
    state.nodes.delete(p);
  }
  detach(state, path, eventMs);
}

function move(state: ProjectState, from: string, to: string, eventMs: number): void {
  const node = state.nodes.get(from);
  if (!node || from === '' || to === '' || from === to || to.startsWith(`${from}/`)) return;
  const moved = subtree(state, from).map((p) => [p, state.nodes.get(p) as TreeNode] as const);
  for (const [p] of moved) state.nodes.delete(p);
  detach(state, from, eventMs);
  if (state.nodes.has(to)) removeSubtree(state, to, eventMs);
  attach(state, to, eventMs);
  for (const [p, n] of moved) state.nodes.set(to + p.slice(from.length), n);
  node.ctimeMs = eventMs;
  if (state.annotations.size > 0) moveAnnotations(state, from, to);
}

/** Annotations belong to the file, so they follow it when it (or a directory above it) is renamed. */
function moveAnnotations(state: ProjectState, from: string, to: string): void {
  for (const [path, list] of [...state.annotations]) {
    if (path === from || path.startsWith(`${from}/`)) {
      state.annotations.delete(path);
      const dest = to + path.slice(from.length);
      state.annotations.set(dest, [...(state.annotations.get(dest) ?? []), ...list]);
    }
  }
}

/** Names `path` in its parent directory (created if missing) and touches the parent. */
function attach(state: ProjectState, path: string, eventMs: number): void {
  const parent = ensureDirectory(state, parentOf(path) ?? '', eventMs);
  parent.children.add(nameOf(path));
  parent.mtimeMs = eventMs;
  parent.ctimeMs = eventMs;
}

function detach(state: ProjectState, path: string, eventMs: number): void {
  const parent = state.nodes.get(parentOf(path) ?? '');
  if (parent?.kind !== 'directory') return;
  parent.children.delete(nameOf(path));
  parent.mtimeMs = eventMs;
  parent.ctimeMs = eventMs;
}

/** `path` and every path beneath it, parents before children. */
function subtree(state: ProjectState, path: string): string[] {
  const out = [path];
  for (let i = 0; i < out.length; i++) {
    const p = out[i] as string;
    const n = state.nodes.get(p);
    if (n?.kind === 'directory') for (const child of n.children) out.push(joinPath(p, child));
  }
  return out;
}

function count(state: ProjectState, node: TreeNode, sign: 1 | -1): void {
  if (node.kind !== 'file') return;
  state.fileCount += sign;
  state.totalBytes += sign * node.size;
}
