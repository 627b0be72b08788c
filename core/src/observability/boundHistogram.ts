import type { Metric, Registry } from 'prom-client';

/** One exposed sample, as prom-client's `get()` gives it. */
export interface HistogramSample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  /** Observations per bucket, not cumulative; the last slot is above the highest bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram for the hottest path (one observation per FUSE request): its observers are bound to
 * one label set ahead, so observing is a bucket search and three additions. prom-client's
 * `labels(...).observe()` builds and looks up a key from the label values at every call, which
 * cost 5-10% of a busy mount's thread. Scraped exactly as prom-client's Histogram is (the same
 * series, labels and values; boundHistogram.unit.test.ts compares the two).
 */
export class BoundHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    private readonly bounds: readonly number[],
    registers: readonly Registry[],
  ) {
    // Registered for scraping only: the registry reads name, help, type, get() and reset().
    for (const registry of registers) registry.registerMetric(this as unknown as Metric);
  }

  /** Records observations under `labels`; keep it for as long as those labels apply. */
  observer(labels: Readonly<Record<L, string>>): (value: number) => void {
    const key = this.labelNames.map((name) => labels[name]).join('\u0000');
    let series = this.series.get(key);
    if (!series) {
      series = { labels: { ...labels }, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    const { bounds } = this;
    const bound = series;
    return (value) => {
      let bucket = 0;
      while (bucket < bounds.length && value > bounds[bucket]!) bucket++;
      bound.counts[bucket]!++;
      bound.sum += value;
      bound.count++;
    };
  }

  /** What the registry scrapes. A series shows once observed, as in prom-client (also after a reset). */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: HistogramSample[] }> {
    const values: HistogramSample[] = [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      if (count === 0) continue;
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: count });
      values.push({ metricName: `${this.name}_sum`, labels: { ...labels }, value: sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...labels }, value: count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** `registry.resetMetrics()`: every series back to nothing observed; bound observers go on counting. */
  reset(): void {
    for (const series of this.series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}
