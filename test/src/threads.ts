import { readdir, readFile } from 'node:fs/promises';

export const SCHED_OTHER = 0;
export const SCHED_IDLE = 5;

export interface ThreadInfo {
  tid: number;
  name: string;
  /** sched_setscheduler's policy: SCHED_OTHER, SCHED_IDLE, ... */
  policy: number;
}

/** Each live thread of `pid` with its name and scheduling policy (field 41 of /proc/PID/task/TID/stat). */
export async function threadsOf(pid: number): Promise<ThreadInfo[]> {
  const found = await Promise.all(
    (await readdir(`/proc/${pid}/task`)).map(async (tid) => {
      try {
        const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        // The name may hold spaces and parentheses: the fields after it start at field 3.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const name = (await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8')).trimEnd();
        return { tid: Number(tid), name, policy: Number(fields[41 - 3]) };
      } catch {
        return undefined; // ended since the listing
      }
    }),
  );
  return found.filter((t) => t !== undefined);
}

/** Why `pid` does not run V8's workers under SCHED_IDLE and everything else as normal (ADR 0096); undefined when it does. */
export async function v8WorkersNotIdle(pid: number): Promise<string | undefined> {
  const threads = await threadsOf(pid);
  const workers = threads.filter((t) => t.name === 'V8Worker');
  // None found means Node renamed its pool, and the latency tail of ADR 0096 is back.
  if (workers.length === 0) return `no V8Worker among ${threads.map((t) => t.name).join(', ')}`;
  const wrong = threads.filter((t) => t.policy !== (t.name === 'V8Worker' ? SCHED_IDLE : SCHED_OTHER));
  return wrong.length === 0 ? undefined : `wrong policy: ${wrong.map((t) => `${t.name} ${t.tid} policy ${t.policy}`).join(', ')}`;
}
