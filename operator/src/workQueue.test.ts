import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue, type Outcome, type WorkQueueOptions } from './workQueue.js';
import { eventually } from '@lighthouse-bridge/test/eventually';

const fast: WorkQueueOptions = { workers: 4, ratePerSecond: 10_000, burst: 10_000, baseBackoffMs: 20, maxBackoffMs: 200 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('WorkQueue', () => {
  it('runs a key added many times while queued once', async () => {
    const runs: string[] = [];
    const queue = new WorkQueue(async (key) => (runs.push(key), { kind: 'done' }), () => undefined, { ...fast, workers: 1 });
    queue.add('blocker');
    for (let i = 0; i < 10; i++) queue.add('a');
    await eventually('both ran', () => runs.length >= 2);
    await sleep(50);
    assert.deepEqual(runs, ['blocker', 'a']);
    await queue.stop();
  });

  it('never runs one key on two workers at once, and reruns a key changed while running', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const queue = new WorkQueue(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        runs++;
        await sleep(30);
        running--;
        return { kind: 'done' };
      },
      () => undefined,
      fast,
    );
    queue.add('k');
    await sleep(5);
    queue.add('k');
    queue.add('k');
    await eventually('rerun', () => runs === 2);
    await sleep(60);
    assert.equal(maxRunning, 1);
    assert.equal(runs, 2, 'one rerun for all changes during the run');
    await queue.stop();
  });

  it('backs off exponentially per key and forgets failures after a success', async () => {
    const times: number[] = [];
    const attempts: number[] = [];
    const queue = new WorkQueue(
      async (): Promise<Outcome> => {
        times.push(performance.now());
        return times.length <= 4 ? { kind: 'retry', error: new Error('not yet') } : { kind: 'done' };
      },
      (_key, _error, attempt) => attempts.push(attempt),
      { ...fast, baseBackoffMs: 20, maxBackoffMs: 1_000 },
    );
    queue.add('k');
    await eventually('5 runs', () => times.length === 5);
    assert.deepEqual(attempts, [1, 2, 3, 4]);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    // 20, 40, 80, 160 ms with ±20 % jitter
    for (const [i, gap] of gaps.entries()) assert.ok(gap >= 20 * 2 ** i * 0.8 - 2, `gap ${i} = ${gap.toFixed(1)} ms`);
    assert.ok((gaps[3] as number) > (gaps[0] as number) * 4);
    await queue.stop();
  });

  it('limits the start rate with its token bucket', async () => {
    let runs = 0;
    const queue = new WorkQueue(async () => (runs++, { kind: 'done' }), () => undefined, { ...fast, ratePerSecond: 100, burst: 10 });
    const started = performance.now();
    for (let i = 0; i < 40; i++) queue.add(`k${i}`);
    await eventually('40 runs', () => runs === 40);
    const elapsed = performance.now() - started;
    // 10 at once, then 30 at 100/s: at least ~300 ms.
    assert.ok(elapsed >= 270, `took ${elapsed.toFixed(0)} ms`);
    await queue.stop();
  });

  it('requeueAfter brings a key back; stop() drops pending retries and waits for running work', async () => {
    let runs = 0;
    let finished = false;
    const queue = new WorkQueue(
      async (): Promise<Outcome> => {
        runs++;
        if (runs === 2) {
          await sleep(50);
          finished = true;
        }
        return { kind: 'requeueAfter', ms: 10 };
      },
      () => undefined,
      fast,
    );
    queue.add('k');
    await eventually('second run started', () => runs === 2);
    await queue.stop();
    assert.equal(finished, true, 'stop waited for the running handler');
    await sleep(50);
    assert.equal(runs, 2, 'nothing ran after stop');
  });
});
