import { Worker } from 'node:worker_threads';
import type { PolicyConfig } from '../config/projectConfig.js';
import type { Judgement } from './judge.js';

export interface JudgeThreadOptions {
  /** A request not judged by then is answered `unavailable` (the validator denies). Default 2 s. */
  deadlineMs?: number;
  /** Requests waiting for the thread; one more is answered `unavailable` at once. Default 64. */
  maxQueued?: number;
}

export interface JudgeWorkerData {
  policy: PolicyConfig | undefined;
  projectRoot: string | undefined;
}

export interface JudgeRequest {
  id: number;
  raw: unknown;
}

interface Pending {
  resolve(judgement: Judgement): void;
  timer: NodeJS.Timeout;
}

/**
 * Judges requests on a worker thread, so no request, however large or hostile, holds the thread
 * that answers file operations (a node plugin serves every mount on the node from one). The queue
 * is bounded and every request has a deadline; past it the worker, busy with something that should
 * not take that long, is replaced and everything it held is answered `unavailable`.
 */
export class JudgeThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private readonly deadlineMs: number;
  private readonly maxQueued: number;

  constructor(
    private readonly data: JudgeWorkerData,
    options: JudgeThreadOptions = {},
  ) {
    this.deadlineMs = options.deadlineMs ?? 2000;
    this.maxQueued = options.maxQueued ?? 64;
    this.start();
  }

  judge(raw: unknown): Promise<Judgement> {
    if (this.pending.size >= this.maxQueued) return Promise.resolve({ kind: 'unavailable', reason: `${this.maxQueued} validations are already waiting; failing closed` });
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.restart(`validation did not finish within ${this.deadlineMs} ms; failing closed`), this.deadlineMs);
      this.pending.set(id, { resolve, timer });
      worker.postMessage({ id, raw } satisfies JudgeRequest);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.failAll('the validator is closing');
    await worker?.terminate();
  }

  private start(): Worker {
    const worker = new Worker(new URL('./judgeWorker.js', import.meta.url), { workerData: this.data });
    // An idle worker must not keep the process alive; pending requests hold timers that do.
    worker.unref();
    worker.on('message', ({ id, judgement }: { id: number; judgement: Judgement }) => {
      const p = this.pending.get(id);
      if (p === undefined) return;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.resolve(judgement);
    });
    worker.on('error', (error) => {
      if (this.worker === worker) this.restart(`the validation thread failed: ${error.message}; failing closed`);
    });
    worker.on('exit', () => {
      if (this.worker === worker) this.restart('the validation thread exited; failing closed');
    });
    this.worker = worker;
    return worker;
  }

  /** Drops the worker (a new one starts with the next request) and answers what it held. */
  private restart(reason: string): void {
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(reason);
    void worker?.terminate();
  }

  private failAll(reason: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ kind: 'unavailable', reason });
      this.pending.delete(id);
    }
  }
}
