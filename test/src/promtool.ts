import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { kubeToolsDir } from './kube.js';

/** promtool, built by test/setup/tools/promtool.sh next to the kube binaries. */
export const PROMTOOL = join(kubeToolsDir(), 'promtool');

/** A `skip` value for tests that need promtool: false when it is built, else the reason. */
export const promtoolSkip: string | false = (() => {
  try {
    accessSync(PROMTOOL, constants.X_OK);
    return false;
  } catch {
    return 'promtool not built: run bash test/setup/tools/promtool.sh';
  }
})();

export function promtool(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(PROMTOOL, args, { cwd, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

/** One sample of a Prometheus text-format scrape. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** Counters, histogram buckets/sums/counts and summary sums/counts only grow. */
  cumulative: boolean;
}

/** Parses a `/metrics` body (text format 0.0.4, as prom-client writes it). */
export function parseScrape(text: string): Sample[] {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1] ?? '', type[2] ?? '');
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const name = m[1] ?? '';
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    const kind = types.get(family);
    const cumulative = kind === 'counter' || kind === 'histogram' || (kind === 'summary' && name !== family);
    samples.push({ name, labels, value: Number(m[3]), cumulative });
  }
  return samples;
}

function seriesName(s: Sample): string {
  const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${v}"`);
  return `${s.name}{${labels.join(',')}}`;
}

/**
 * promtool input series that repeat, every `interval` for `steps` intervals, what happened between
 * two scrapes: cumulative series grow by the difference each interval, gauges hold their value at
 * `after`. A series missing from `before` started at 0.
 */
export function seriesBetween(before: Sample[], after: Sample[], steps: number): Array<{ series: string; values: string }> {
  const start = new Map(before.map((s) => [seriesName(s), s.value]));
  return after
    .filter((s) => Number.isFinite(s.value))
    .map((s) => {
      const series = seriesName(s);
      if (!s.cumulative) return { series, values: `${s.value}x${steps}` };
      const from = start.get(series) ?? 0;
      return { series, values: `${from}+${Math.max(0, s.value - from)}x${steps}` };
    });
}
