import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BreakerOpenError, CircuitBreaker } from './circuitBreaker.js';
import { registry } from '../observability/metrics.js';

test('opens after consecutive failures, refuses without calling, half-opens after the timeout and closes on success', async () => {
  let now = 0;
  const breaker = new CircuitBreaker({ name: 'unit-test', failureThreshold: 2, resetTimeoutMs: 1000, now: () => now });
  let calls = 0;
  const fail = () => breaker.run(async () => {
    calls++;
    throw new Error('connection refused');
  });
  const succeed = () => breaker.run(async () => {
    calls++;
    return 'ok';
  });

  await assert.rejects(fail(), /connection refused/);
  assert.equal(breaker.state, 'closed');
  assert.equal(await succeed(), 'ok'); // a success resets the count
  await assert.rejects(fail());
  assert.equal(breaker.state, 'closed');
  await assert.rejects(fail());
  assert.equal(breaker.state, 'open');

  const before = calls;
  await assert.rejects(succeed(), (e: unknown) => e instanceof BreakerOpenError && /connection refused/.test(e.message));
  assert.equal(calls, before, 'an open breaker does not call through');

  now += 1000;
  // A failed trial re-opens at once, without waiting for the threshold again.
  await assert.rejects(fail(), /connection refused/);
  assert.equal(breaker.state, 'open');
  now += 1000;
  assert.equal(await succeed(), 'ok');
  assert.equal(breaker.state, 'closed');

  const metric = await registry.getSingleMetric('lighthouse_bridge_breaker_transitions_total')?.get();
  const count = (to: string) => metric?.values.find((v) => v.labels['breaker'] === 'unit-test' && v.labels['to'] === to)?.value;
  assert.deepEqual([count('open'), count('half-open'), count('closed')], [2, 2, 1]);
});

test('half-open lets exactly one trial through at a time', async () => {
  let now = 0;
  const breaker = new CircuitBreaker({ name: 'unit-test-trial', failureThreshold: 1, resetTimeoutMs: 10, now: () => now });
  await assert.rejects(breaker.run(async () => Promise.reject(new Error('down'))));
  now += 10;
  let release!: () => void;
  const trial = breaker.run(() => new Promise<void>((r) => (release = r)));
  await assert.rejects(breaker.run(async () => undefined), BreakerOpenError);
  release();
  await trial;
  assert.equal(breaker.state, 'closed');
});
