/**
 * The project's event types. Schemas are additive: a reader ignores fields and event types it does
 * not know, so old readers keep working on new logs. File content never travels in an event; it is
 * a content-addressed blob (sha256, lowercase hex) stored beside the log.
 */

/** Milliseconds since the epoch, as in `Date.now()`. */
export type EpochMs = number;

export interface FileWritten {
  type: 'FileWritten';
  data: { path: string; hash: string; size: number; mode: number; mtimeMs: EpochMs };
}
export interface SymlinkCreated {
  type: 'SymlinkCreated';
  data: { path: string; target: string; mtimeMs: EpochMs };
}
export interface PathDeleted {
  /** A file or symlink removed (unlink). */
  type: 'PathDeleted';
  data: { path: string };
}
export interface PathMoved {
  /** A file, symlink or whole directory renamed; replaces `to` when it is a file or an empty directory. */
  type: 'PathMoved';
  data: { from: string; to: string };
}
export interface DirectoryCreated {
  type: 'DirectoryCreated';
  data: { path: string; mode: number; mtimeMs: EpochMs };
}
export interface DirectoryRemoved {
  type: 'DirectoryRemoved';
  data: { path: string };
}
export interface AttributesChanged {
  type: 'AttributesChanged';
  data: { path: string; mode?: number; mtimeMs?: EpochMs };
}
export interface AnnotationAdded {
  type: 'AnnotationAdded';
  data: { path: string; id: string; text: string; line?: number; tags?: string[] };
}
export interface ContextPackageCreated {
  type: 'ContextPackageCreated';
  data: {
    name: string;
    description?: string;
    from?: string;
    to?: string;
    files: Array<{ path: string; hash: string; size: number }>;
  };
}
export interface AgentSessionStarted {
  type: 'AgentSessionStarted';
  data: { sessionId: string; agent: string; node?: string };
}
export interface AgentSessionEnded {
  type: 'AgentSessionEnded';
  data: { sessionId: string };
}
export interface ValidationRequested {
  type: 'ValidationRequested';
  data: { requestId: string; agent: string; tool: string; input: unknown; deadlineMs: EpochMs };
}
export interface ValidationDecided {
  type: 'ValidationDecided';
  data: { requestId: string; decision: 'allow' | 'deny'; reason: string; by: string };
}

/**
 * Stands in for an event the embedded store cut off its log as damaged or torn (one per sequence
 * number the cut record claimed), so that number is never given to another event. Changes nothing.
 */
export interface EventLost {
  type: 'EventLost';
  data: { file: string; offset: number; bytes: number; reason: string; savedAs: string };
}

export type BridgeEvent =
  | EventLost
  | FileWritten
  | SymlinkCreated
  | PathDeleted
  | PathMoved
  | DirectoryCreated
  | DirectoryRemoved
  | AttributesChanged
  | AnnotationAdded
  | ContextPackageCreated
  | AgentSessionStarted
  | AgentSessionEnded
  | ValidationRequested
  | ValidationDecided;

export type BridgeEventType = BridgeEvent['type'];

/** What a writer hands to the store. */
export type NewEvent = BridgeEvent & {
  /** Who caused it: an agent id, a user, `system`. */
  actor: string;
};

/**
 * An event as the store recorded it. `seq` is dense and starts at 1 per project; `time` is assigned
 * by the store (RFC 3339 UTC with milliseconds) and never decreases along `seq`, so "the state at
 * instant T" is well defined even when writers' clocks disagree.
 */
export type RecordedEvent = NewEvent & {
  seq: number;
  time: string;
};

/** The path an event is about, where it has one (for logs and `log --json`). */
export function eventPath(e: BridgeEvent): string | undefined {
  const d = e.data as { path?: unknown; from?: unknown };
  if (typeof d.path === 'string') return d.path;
  if (typeof d.from === 'string') return d.from;
  return undefined;
}
