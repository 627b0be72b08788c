/**
 * Least-recently-used cache bounded by the total size of its values, not their number: blob
 * contents range from bytes to the per-file limit, so a count bound would either waste memory or
 * thrash. Built on Map's insertion order (delete + set moves an entry to the young end), so
 * get/set are O(1). A value larger than the whole budget is not cached at all.
 */
export class LruCache<K, V> {
  private readonly entries = new Map<K, { value: V; bytes: number }>();
  private used = 0;
  private hitCount = 0;
  private missCount = 0;

  constructor(
    readonly maxBytes: number,
    private readonly sizeOf: (value: V) => number,
  ) {}

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.missCount++;
      return undefined;
    }
    this.hitCount++;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Presence without counting a hit or refreshing recency. */
  has(key: K): boolean {
    return this.entries.has(key);
  }

  set(key: K, value: V): void {
    const bytes = this.sizeOf(value);
    this.delete(key);
    if (bytes > this.maxBytes) return;
    this.entries.set(key, { value, bytes });
    this.used += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.used -= entry.bytes;
    }
  }

  delete(key: K): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    this.used -= entry.bytes;
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.used = 0;
  }

  get stats(): { hits: number; misses: number; entries: number; bytes: number; maxBytes: number } {
    return { hits: this.hitCount, misses: this.missCount, entries: this.entries.size, bytes: this.used, maxBytes: this.maxBytes };
  }
}
