import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBuckets } from './tokenBucket.js';

test('each key gets its burst, then refills at the rate, never above the burst', () => {
  let now = 0;
  const buckets = new TokenBuckets({ perSecond: 10, burst: 5 }, () => now);
  for (let i = 0; i < 5; i++) assert.equal(buckets.take('a'), true);
  assert.equal(buckets.take('a'), false);
  assert.equal(buckets.take('b'), true, 'keys are independent');
  now += 100; // one token
  assert.equal(buckets.take('a'), true);
  assert.equal(buckets.take('a'), false);
  now += 60_000;
  let taken = 0;
  while (buckets.take('a')) taken++;
  assert.equal(taken, 5);
});

test('forgets full buckets when the key count is bounded, without resetting busy ones', () => {
  let now = 0;
  const buckets = new TokenBuckets({ perSecond: 1, burst: 2 }, () => now, 3);
  buckets.take('busy');
  buckets.take('busy');
  buckets.take('idle-1');
  now += 10_000; // idle-1 and busy are full again
  buckets.take('busy');
  buckets.take('busy');
  buckets.take('x');
  buckets.take('y'); // over the bound: full buckets are dropped, busy is not
  // Only idle-1 was full again; busy and x (each used since) are kept.
  const kept = (buckets as unknown as { buckets: Map<string, unknown> }).buckets;
  assert.deepEqual([...kept.keys()].sort(), ['busy', 'x', 'y']);
  assert.equal(buckets.take('busy'), false);
  assert.throws(() => new TokenBuckets({ perSecond: 0, burst: 1 }), RangeError);
});
