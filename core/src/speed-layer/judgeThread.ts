import { Worker } from 'node:worker_threads';
import type { PolicyConfig } from '../config/projectConfig.js';
import type { Judgement } from './judge.js';

export interface JudgeThreadOptions {
  /** A request not judged by then is answered `unavailable` (the validator denies). Default 2 s. */
  deadlineMs?: number;
  /** This validator's requests waiting for the thread; one more is answered `unavailable` at once. Default 64. */
  maxQueued?: number;
}

/** What the worker needs to judge for one validator: its policy, compiled there once. */
export interface JudgePolicy {
  policy: PolicyConfig | undefined;
  projectRoot: string | undefined;
}

/** Messages to the worker. */
export type ToJudgeWorker =
  | { kind: 'policy'; policyId: number; data: JudgePolicy }
  | { kind: 'drop'; policyId: number }
  | { kind: 'judge'; id: number; policyId: number; raw: unknown };

/** The worker's answer to a `judge` message. */
export interface FromJudgeWorker {
  id: number;
  judgement: Judgement;
}

interface Pending {
  readonly owner: JudgeThread;
  resolve(judgement: Judgement): void;
  timer: NodeJS.Timeout;
}

/**
 * The one worker thread of this process that judges requests for every validator in it. One, not
 * one per validator: a node plugin holds a validator per mount, and a thread costs ~10 MB (100
 * mounts measured 1 GB with a thread each). Policies are registered once and kept here so that a
 * replaced worker gets them all back.
 */
class SharedJudgeWorker {
  private worker: Worker | undefined;
  private readonly policies = new Map<number, JudgePolicy>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private nextPolicyId = 0;

  register(data: JudgePolicy): number {
    const policyId = this.nextPolicyId++;
    this.policies.set(policyId, data);
    this.worker?.postMessage({ kind: 'policy', policyId, data } satisfies ToJudgeWorker);
    return policyId;
  }

  drop(policyId: number, owner: JudgeThread): void {
    this.policies.delete(policyId);
    for (const [id, p] of this.pending) if (p.owner === owner) this.settle(id, { kind: 'unavailable', reason: 'the validator is closing' });
    if (this.policies.size === 0) {
      const worker = this.worker;
      this.worker = undefined;
      void worker?.terminate();
    } else this.worker?.postMessage({ kind: 'drop', policyId } satisfies ToJudgeWorker);
  }

  judge(owner: JudgeThread, policyId: number, raw: unknown, deadlineMs: number): Promise<Judgement> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.restart(`validation did not finish within ${deadlineMs} ms; failing closed`), deadlineMs);
      this.pending.set(id, { owner, resolve, timer });
      worker.postMessage({ kind: 'judge', id, policyId, raw } satisfies ToJudgeWorker);
    });
  }

  private start(): Worker {
    const worker = new Worker(new URL('./judgeWorker.js', import.meta.url));
    // An idle worker must not keep the process alive; pending requests hold timers that do.
    worker.unref();
    for (const [policyId, data] of this.policies) worker.postMessage({ kind: 'policy', policyId, data } satisfies ToJudgeWorker);
    worker.on('message', ({ id, judgement }: FromJudgeWorker) => this.settle(id, judgement));
    worker.on('error', (error) => {
      if (this.worker === worker) this.restart(`the validation thread failed: ${error.message}; failing closed`);
    });
    worker.on('exit', () => {
      if (this.worker === worker) this.restart('the validation thread exited; failing closed');
    });
    this.worker = worker;
    return worker;
  }

  /** Drops the worker (a new one starts with the next request) and answers everything it held. */
  private restart(reason: string): void {
    const worker = this.worker;
    this.worker = undefined;
    for (const id of [...this.pending.keys()]) this.settle(id, { kind: 'unavailable', reason });
    void worker?.terminate();
  }

  private settle(id: number, judgement: Judgement): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.owner.settled();
    p.resolve(judgement);
  }
}

const shared = new SharedJudgeWorker();

/**
 * Judges one validator's requests on the process's judge thread, so no request, however large or
 * hostile, holds the thread that answers file operations (a node plugin serves every mount on the
 * node from one). Each validator has its own bounded queue, so one project's flood cannot take
 * another's places; every request has a deadline, past which the worker, busy with something that
 * should not take that long, is replaced and everything it held is answered `unavailable`.
 */
export class JudgeThread {
  private readonly policyId: number;
  private readonly deadlineMs: number;
  private readonly maxQueued: number;
  private closed = false;
  /** This validator's requests on the shared thread not answered yet (checked on every request: a count, not a scan). */
  private waiting = 0;

  constructor(data: JudgePolicy, options: JudgeThreadOptions = {}) {
    this.deadlineMs = options.deadlineMs ?? 2000;
    this.maxQueued = options.maxQueued ?? 64;
    this.policyId = shared.register(data);
  }

  judge(raw: unknown): Promise<Judgement> {
    if (this.closed) return Promise.resolve({ kind: 'unavailable', reason: 'the validator is closing' });
    if (this.waiting >= this.maxQueued) return Promise.resolve({ kind: 'unavailable', reason: `${this.maxQueued} validations are already waiting; failing closed` });
    this.waiting++;
    return shared.judge(this, this.policyId, raw, this.deadlineMs);
  }

  /** Called by the shared worker when one of this validator's requests is answered, however. */
  settled(): void {
    this.waiting--;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    shared.drop(this.policyId, this);
  }
}
