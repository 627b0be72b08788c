import type { EpochMs } from '../events/events.js';

/**
 * The project as of one event: the file tree plus what sits beside it. Paths are normalized
 * relative paths (`a/b.txt`; the root is `''`). `evolve` updates a state in place for speed
 * (replaying 100k events must take well under 2 s); a state handed to readers of history is
 * never evolved again.
 */
export interface ProjectState {
  /** Sequence number of the last event applied; 0 for a new project. */
  seq: number;
  /** Store time of that event (RFC 3339), '' for a new project. */
  time: string;
  /** Every path in the tree, the root `''` included (always a directory). */
  nodes: Map<string, TreeNode>;
  /** Sum of the sizes of all files. */
  totalBytes: number;
  fileCount: number;
  annotations: Map<string, Annotation[]>;
  contextPackages: Map<string, ContextPackage>;
  sessions: Map<string, { agent: string; startedAt: string; node?: string }>;
  /** Validation requests awaiting an expert's answer. */
  pendingValidations: Map<string, { agent: string; tool: string; deadlineMs: EpochMs }>;
}

export type TreeNode = FileNode | DirectoryNode | SymlinkNode;

export interface FileNode {
  kind: 'file';
  hash: string;
  size: number;
  mode: number;
  mtimeMs: EpochMs;
  /** Time of the event that last changed this node (store time, ms). */
  ctimeMs: EpochMs;
}

export interface DirectoryNode {
  kind: 'directory';
  mode: number;
  mtimeMs: EpochMs;
  ctimeMs: EpochMs;
  /** Names (not paths) of the direct children, in insertion order. */
  children: Set<string>;
}

export interface SymlinkNode {
  kind: 'symlink';
  target: string;
  mtimeMs: EpochMs;
  ctimeMs: EpochMs;
}

export interface Annotation {
  id: string;
  text: string;
  actor: string;
  time: string;
  line?: number;
  tags?: string[];
}

export interface ContextPackage {
  name: string;
  description?: string;
  from?: string;
  to?: string;
  actor: string;
  time: string;
  files: Array<{ path: string; hash: string; size: number }>;
}
