import type { Annotation, ContextPackage, ProjectState, TreeNode } from './state.js';

/**
 * ProjectState ⇄ bytes for snapshots. JSON, because snapshots are written once per thousand
 * events and must stay readable by later versions; Maps and Sets become arrays of entries.
 * `v` lets a future format coexist: an unknown version is rejected, and the caller then replays
 * from an older snapshot or from the start instead of trusting bytes it cannot read.
 */
const FORMAT_VERSION = 1;

type EncodedNode = Exclude<TreeNode, { kind: 'directory' }> | (Omit<Extract<TreeNode, { kind: 'directory' }>, 'children'> & { children: string[] });

interface EncodedState {
  v: number;
  seq: number;
  time: string;
  totalBytes: number;
  fileCount: number;
  nodes: Array<[string, EncodedNode]>;
  annotations: Array<[string, Annotation[]]>;
  contextPackages: Array<[string, ContextPackage]>;
  sessions: Array<[string, { agent: string; startedAt: string; node?: string }]>;
  pendingValidations: Array<[string, { agent: string; tool: string; deadlineMs: number }]>;
}

export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
}

export function encodeSnapshot(state: ProjectState): Uint8Array {
  const nodes: Array<[string, EncodedNode]> = [];
  for (const [path, node] of state.nodes) {
    nodes.push([path, node.kind === 'directory' ? { ...node, children: [...node.children] } : node]);
  }
  const encoded: EncodedState = {
    v: FORMAT_VERSION,
    seq: state.seq,
    time: state.time,
    totalBytes: state.totalBytes,
    fileCount: state.fileCount,
    nodes,
    annotations: [...state.annotations],
    contextPackages: [...state.contextPackages],
    sessions: [...state.sessions],
    pendingValidations: [...state.pendingValidations],
  };
  return Buffer.from(JSON.stringify(encoded));
}

export function decodeSnapshot(bytes: Uint8Array): ProjectState {
  let encoded: EncodedState;
  try {
    encoded = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as EncodedState;
  } catch (error) {
    throw new SnapshotFormatError(`snapshot is not valid JSON: ${(error as Error).message}`);
  }
  if (encoded?.v !== FORMAT_VERSION || !Array.isArray(encoded.nodes)) throw new SnapshotFormatError(`unsupported snapshot format ${String(encoded?.v)}`);
  const nodes = new Map<string, TreeNode>();
  for (const [path, node] of encoded.nodes) {
    nodes.set(path, node.kind === 'directory' ? { ...node, children: new Set(node.children) } : node);
  }
  if (nodes.get('')?.kind !== 'directory') throw new SnapshotFormatError('snapshot has no root directory');
  return {
    seq: encoded.seq,
    time: encoded.time,
    nodes,
    totalBytes: encoded.totalBytes,
    fileCount: encoded.fileCount,
    annotations: new Map(encoded.annotations),
    contextPackages: new Map(encoded.contextPackages),
    sessions: new Map(encoded.sessions),
    pendingValidations: new Map(encoded.pendingValidations),
  };
}
