import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { kubeToolsDir } from '@lighthouse-bridge/test/kube';

/** The chart in this checkout, and the helm binary test/setup/tools/helm.sh extracts. */
export const CHART = fileURLToPath(new URL('../../../charts/lighthouse-bridge', import.meta.url));
export const HELM = join(kubeToolsDir(), 'helm');
export const RELEASE_NAMESPACE = 'lighthouse-bridge';
export const helmAvailable = (() => {
  try {
    accessSync(HELM, constants.X_OK);
    return true;
  } catch {
    return false;
  }
})();

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}

export function helm(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(HELM, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => (error ? reject(new Error(`helm ${args.join(' ')}: ${stderr}`)) : resolve(stdout)));
  });
}

/** The external Redis every render uses unless it passes `redis: false`. */
export const TEST_REDIS_URL = 'redis://redis.example:6379';

/**
 * `helm template` as release `release`, with extra helm flags (e.g. `--api-versions`) and `--set`s.
 * `redis: false` leaves the Redis choice to the `--set`s.
 */
export async function renderAs(release: string, flags: string[], set: string[], options: { redis?: boolean } = {}): Promise<Manifest[]> {
  const redis = options.redis === false ? [] : ['--set', `redis.url=${TEST_REDIS_URL}`];
  const rendered = await helm(['template', release, CHART, ...flags, '--namespace', RELEASE_NAMESPACE, '--include-crds', ...redis, ...set.flatMap((s) => ['--set', s])]);
  return parseAllDocuments(rendered)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

/** `helm template lhb` with an external Redis and these `--set`s. */
export function render(...set: string[]): Promise<Manifest[]> {
  return renderAs('lhb', [], set);
}
