import type { Command } from '../aggregate/commands.js';
import type { ProjectLimits } from '../aggregate/limits.js';
import { normalizePath, parentOf } from '../aggregate/paths.js';
import type { ProjectState } from '../aggregate/state.js';
import type { NewEvent } from '../events/events.js';
import type { HashedBlob } from '../store/eventStore.js';

/** Bounds on one shared append: a Redis script run stays near a millisecond, a record small. */
const MAX_BATCH_COMMANDS = 256;
const MAX_BATCH_BLOB_BYTES = 1024 * 1024;

export interface Queued {
  command: Command;
  blobs?: readonly HashedBlob[] | undefined;
}

/**
 * How many of the queued commands, from the front, may share one append (at least one). Closes
 * of several writers arrive together; appended one after another, each waits for the one before
 * it (on Redis, a round trip each). They may share an append only when deciding them all on the
 * same head state gives what deciding them in turn would give:
 * - only WriteFile, which reads its own path, its parent directory and the project's totals;
 * - no two on one path, and none on an ancestor of another's path (a file written where the
 *   other needs its parent directory);
 * - the totals are checked for the batch as a whole (`fitTogether`) once each is decided.
 */
export function leadingBatch(queue: readonly Queued[], limits: ProjectLimits): number {
  const paths = new Set<string>();
  const ancestors = new Set<string>();
  let bytes = 0;
  let n = 0;
  for (const { command, blobs } of queue) {
    if (n === MAX_BATCH_COMMANDS || command.type !== 'WriteFile') break;
    let path: string;
    try {
      path = normalizePath(command.path, limits);
    } catch {
      break; // refused when decided, on its own
    }
    const above = ancestorsOf(path);
    if (paths.has(path) || ancestors.has(path) || above.some((a) => paths.has(a))) break;
    for (const blob of blobs ?? []) bytes += blob.content.byteLength;
    if (n > 0 && bytes > MAX_BATCH_BLOB_BYTES) break;
    paths.add(path);
    for (const a of above) ancestors.add(a);
    n++;
  }
  return Math.max(n, 1);
}

/** Whether the files the batch writes, each within the limits alone, fit the project together. */
export function fitTogether(state: ProjectState, limits: ProjectLimits, events: readonly NewEvent[]): boolean {
  let entries = state.nodes.size - 1;
  let bytes = state.totalBytes;
  for (const event of events) {
    if (event.type !== 'FileWritten') continue;
    const existing = state.nodes.get(event.data.path);
    if (!existing) entries++;
    bytes += event.data.size - (existing?.kind === 'file' ? existing.size : 0);
  }
  return entries <= limits.maxFiles && bytes <= limits.maxProjectBytes;
}

function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let p = parentOf(path); p !== undefined; p = parentOf(p)) out.push(p);
  return out;
}
