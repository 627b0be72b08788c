import { readdirSync, readFileSync } from 'node:fs';
import { isNativeError, native } from './native.js';

/** The name Node gives the threads of its V8 platform pool (garbage collection and compilation). */
const V8_WORKER = 'V8Worker';

/**
 * Puts this process's V8 worker threads under SCHED_IDLE (ADR 0096); for the processes that serve
 * mounts, called once at their start. Every FUSE request waits for our one JavaScript thread. When
 * that thread, or the caller it answers, was woken on the CPU where a worker was running 1-2 ms of
 * marking or compiling, the scheduler left it waiting behind the worker, often with the other CPU
 * idle. A woken normal thread preempts a SCHED_IDLE one at once.
 *
 * A failure goes to `onFailure` and leaves the remaining threads as they were: the mount works
 * either way, only its latency tail is longer.
 */
export function idleV8Workers(onFailure: (error: unknown) => void): void {
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      if (threadName(tid) !== V8_WORKER) continue;
      try {
        native.idleThread(Number(tid));
      } catch (error) {
        // A thread that ended meanwhile has nothing left to deprioritise.
        if (!isNativeError(error) || error.code !== 'ESRCH') throw error;
      }
    }
  } catch (error) {
    onFailure(error);
  }
}

function threadName(tid: string): string | undefined {
  try {
    return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trimEnd();
  } catch {
    return undefined;
  }
}
