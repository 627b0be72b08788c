import { DEFAULT_SEGMENT_BYTES, ProjectLog } from './projectLog.js';

/**
 * Every store in one process that opens a project shares one ProjectLog: the writer lock is
 * per process, so two stores in a process appending to one project must go through one group
 * commit queue and one sequence (e.g. a mount and a CLI command in the same test).
 */
interface Entry {
  log: ProjectLog;
  refs: number;
}

const open = new Map<string, Entry>();
/** Projects whose last log is still closing: a new log waits for it before taking the lock. */
const closing = new Map<string, Promise<void>>();

export function acquireProjectLog(projectDir: string, label: string, segmentBytes = DEFAULT_SEGMENT_BYTES): ProjectLog {
  let entry = open.get(projectDir);
  if (!entry) {
    entry = { log: new ProjectLog(projectDir, label, segmentBytes, closing.get(projectDir)), refs: 0 };
    open.set(projectDir, entry);
  }
  entry.refs++;
  return entry.log;
}

export async function releaseProjectLog(projectDir: string, log: ProjectLog): Promise<void> {
  const entry = open.get(projectDir);
  if (!entry || entry.log !== log || --entry.refs > 0) return;
  open.delete(projectDir);
  const done = log.close();
  const settled = done.catch(() => undefined);
  closing.set(projectDir, settled);
  void settled.then(() => {
    if (closing.get(projectDir) === settled) closing.delete(projectDir);
  });
  await done;
}
