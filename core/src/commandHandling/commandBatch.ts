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
 * it (on Redis, a round trip each). So do attribute changes that nobody waits for (ADR 0098). They
 * may share an append only when deciding them all on the same head state gives what deciding them
 * in turn would give:
 * - WriteFile reads its own path (the mode it keeps), its parent directory and the project's
 *   totals: no two on one path, none on an ancestor of another's path (a file written where the
 *   other needs its parent directory), none on a path whose attributes change before it in the
 *   batch; the totals are checked for the batch as a whole (`fitTogether`) once each is decided;
 * - ChangeAttributes reads only that its path exists: any number of them, on any paths but one a
 *   WriteFile before it in the batch may be creating;
 * - after attribute changes alone, one namespace change may end the batch: a rename, unlink,
 *   mkdir, rmdir or symlink reads names and kinds, never modes or times (rsync's chmod, utimens,
 *   then rename of its temporary file is one append).
 */
export function leadingBatch(queue: readonly Queued[], limits: ProjectLimits): number {
  const written = new Set<string>();
  const ancestors = new Set<string>();
  const changed = new Set<string>();
  let bytes = 0;
  let n = 0;
  for (const { command, blobs } of queue) {
    if (n === MAX_BATCH_COMMANDS) break;
    if (command.type !== 'WriteFile' && command.type !== 'ChangeAttributes') {
      if (n > 0 && written.size === 0 && NAMESPACE_CHANGES.has(command.type)) n++;
      break;
    }
    const path = normalized(command.path, limits);
    if (path === undefined) break; // refused when decided, on its own
    if (command.type === 'ChangeAttributes') {
      if (written.has(path)) break;
      changed.add(path);
      n++;
      continue;
    }
    const above = ancestorsOf(path);
    if (written.has(path) || changed.has(path) || ancestors.has(path) || above.some((a) => written.has(a))) break;
    for (const blob of blobs ?? []) bytes += blob.content.byteLength;
    if (n > 0 && bytes > MAX_BATCH_BLOB_BYTES) break;
    written.add(path);
    for (const a of above) ancestors.add(a);
    n++;
  }
  return Math.max(n, 1);
}

/** Commands that read names and kinds only: they may follow attribute changes in one append. */
const NAMESPACE_CHANGES: ReadonlySet<Command['type']> = new Set(['Move', 'Delete', 'MakeDirectory', 'RemoveDirectory', 'CreateSymlink']);

function normalized(path: string, limits: ProjectLimits): string | undefined {
  try {
    return normalizePath(path, limits);
  } catch {
    return undefined;
  }
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
