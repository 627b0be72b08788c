import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LruCache } from './lruCache.js';

const bytes = (n: number): Buffer => Buffer.alloc(n);

describe('LruCache', () => {
  it('evicts least recently used entries to stay within the byte budget', () => {
    const cache = new LruCache<string, Buffer>(100, (b) => b.byteLength);
    cache.set('a', bytes(40));
    cache.set('b', bytes(40));
    assert.ok(cache.get('a')); // a is now the most recent
    cache.set('c', bytes(40)); // 120 > 100: b goes, not a
    assert.equal(cache.has('b'), false);
    assert.equal(cache.has('a'), true);
    assert.equal(cache.has('c'), true);
    assert.equal(cache.stats.bytes, 80);
  });

  it('counts hits and misses', () => {
    const cache = new LruCache<string, Buffer>(100, (b) => b.byteLength);
    cache.set('a', bytes(1));
    cache.get('a');
    cache.get('a');
    cache.get('zz');
    assert.deepEqual({ hits: cache.stats.hits, misses: cache.stats.misses }, { hits: 2, misses: 1 });
  });

  it('does not cache a value bigger than the budget, and replacing a key frees its old size', () => {
    const cache = new LruCache<string, Buffer>(100, (b) => b.byteLength);
    cache.set('small', bytes(10));
    cache.set('huge', bytes(101));
    assert.equal(cache.has('huge'), false);
    assert.equal(cache.has('small'), true, 'an uncacheable value must not flush the cache');
    cache.set('small', bytes(60));
    assert.equal(cache.stats.bytes, 60);
    cache.set('other', bytes(40));
    assert.equal(cache.stats.entries, 2);
    assert.equal(cache.stats.bytes, 100);
  });

  it('stays within budget under many random sizes', () => {
    const cache = new LruCache<number, Buffer>(10_000, (b) => b.byteLength);
    for (let i = 0; i < 5000; i++) {
      cache.set(i % 700, bytes((i * 7919) % 1500));
      assert.ok(cache.stats.bytes <= 10_000);
    }
  });
});
