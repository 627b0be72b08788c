import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { BoundHistogram } from './boundHistogram.js';
import { LATENCY_BUCKETS } from './metrics.js';

/** A scrape's sample lines, as the registry writes them. */
async function samples(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

describe('BoundHistogram', () => {
  it("scrapes line for line as prom-client's Histogram given the same observations, also around a reset", async () => {
    const [ours, theirs] = [new Registry(), new Registry()];
    const name = 'lhb_test_duration_seconds';
    const bound = new BoundHistogram(name, 'help text', ['op', 'project'] as const, LATENCY_BUCKETS, [ours]);
    const stock = new Histogram({ name, help: 'help text', labelNames: ['op', 'project'], buckets: LATENCY_BUCKETS, registers: [theirs] });
    const labelSets = [
      { op: 'lookup', project: 'a' },
      { op: 'create', project: 'a' },
      { op: 'lookup', project: 'b "quoted"\\' },
    ];
    const observers = labelSets.map((labels) => bound.observer(labels));
    // Never observed: no series on either side.
    bound.observer({ op: 'unused', project: 'a' });
    // On the bounds, between them, below the first and above the last.
    const values = [0, 0.00005, 0.00007, 0.0001, 0.001, 0.0049, 0.005, 2.5, 4.9, 5, 7, 123];
    values.forEach((value, i) => {
      const k = i % labelSets.length;
      observers[k]!(value);
      stock.labels(labelSets[k]!).observe(value);
    });
    assert.deepEqual(await samples(ours), await samples(theirs));
    assert.ok((await samples(ours)).length > 0);

    ours.resetMetrics();
    theirs.resetMetrics();
    assert.deepEqual(await samples(ours), await samples(theirs));
    observers[1]!(0.3);
    stock.labels(labelSets[1]!).observe(0.3);
    assert.deepEqual(await samples(ours), await samples(theirs));
  });
});
