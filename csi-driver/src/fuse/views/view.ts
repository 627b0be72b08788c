import type { FuseStat } from '../attributes.js';
import type { ProjectState, ProjectWorkspace, TreeNode } from '@lighthouse-bridge/core';
import { E, fsError } from '../errno.js';
import { BytesHandle, type Handle, type KernelCache } from '../handles.js';

export type Result<T> = T | Promise<T>;

/**
 * One part of the mount's tree, answering for the locations `L` (see layout.ts) that lie in it.
 * Opening for writing was already allowed by the dispatcher (mount mode, immutable views); each
 * view throws FsError / DomainError for what it refuses, mapped to errno once in kernel/session.ts.
 */
export interface View<L> {
  getattr(at: L): Result<FuseStat>;
  /**
   * The attributes a listing gives with the name (READDIRPLUS) when they are at hand, else
   * undefined: a listing must not load anything. Absent: getattr is always at hand.
   */
  getattrAtHand?(at: L): FuseStat | undefined;
  readdir(at: L): Result<string[]>;
  open(at: L, writing: boolean, truncating: boolean): Result<Handle>;
  /** Absent: nothing in this view is a symlink (EINVAL). */
  readlink?(at: L): Result<string>;
}

/** `value` when it is already there, else undefined (a promise is left to settle unseen). */
export function atHand<T>(value: Result<T>): T | undefined {
  if (!(value instanceof Promise)) return value;
  value.catch(() => undefined);
  return undefined;
}

/** Applies `fn` now when `value` is already there, else when it resolves. */
export function then<T, U>(value: Result<T>, fn: (value: T) => Result<U>): Result<U> {
  return value instanceof Promise ? value.then(fn) : fn(value);
}

export function requireNode(state: ProjectState, path: string): TreeNode {
  const node = state.nodes.get(path);
  if (!node) throw fsError(E.ENOENT, `${path} does not exist`);
  return node;
}

export function requireDirectory(state: ProjectState, path: string): Extract<TreeNode, { kind: 'directory' }> {
  const node = requireNode(state, path);
  if (node.kind !== 'directory') throw fsError(E.ENOTDIR, `${path} is not a directory`);
  return node;
}

export function requireSymlinkTarget(state: ProjectState, path: string): string {
  const node = requireNode(state, path);
  if (node.kind !== 'symlink') throw fsError(E.EINVAL, `${path} is not a symlink`);
  return node.target;
}

/** A reader of a recorded file's content (the blob is immutable, so one copy serves every read). */
export function openBlob(workspace: ProjectWorkspace, node: TreeNode, label: string, cache: KernelCache): Promise<Handle> {
  if (node.kind === 'directory') throw fsError(E.EISDIR, `${label} is a directory`);
  if (node.kind !== 'file') throw fsError(E.EINVAL, `${label} is not a regular file`);
  return workspace.readBlob(node.hash).then((data) => new BytesHandle(data, cache));
}

/** One location bound to the view that answers for it. */
export interface Routed {
  getattr(): Result<FuseStat>;
  getattrAtHand(): FuseStat | undefined;
  readdir(): Result<string[]>;
  readlink(): Result<string>;
  open(writing: boolean, truncating: boolean): Result<Handle>;
}

export function bound<L>(view: View<L>, at: L, fusePath: string): Routed {
  return {
    getattr: () => view.getattr(at),
    getattrAtHand: () => (view.getattrAtHand ? view.getattrAtHand(at) : atHand(view.getattr(at))),
    readdir: () => view.readdir(at),
    readlink: () => {
      if (!view.readlink) throw fsError(E.EINVAL, `${fusePath} is not a symlink`);
      return view.readlink(at);
    },
    open: (writing, truncating) => view.open(at, writing, truncating),
  };
}
