import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient, WatchEvent } from './kubeClient.js';

/**
 * List+watch with a local cache, the part of a client-go informer the operator needs: it lists,
 * watches from the list's resourceVersion, and on any watch end or error lists again (so a
 * missed event or a 410 Gone cannot leave the cache stale). A watch quiet for `relistAfterMs` is
 * restarted too, because a silently dead connection looks exactly like a quiet one.
 */
export interface InformerOptions<T> {
  /** Collection path, e.g. `/apis/g/v1/namespaces/ns/things` or the cluster-wide one. */
  path: string;
  relistAfterMs: number;
  /** Called with `namespace/name` on every add, change and delete, and for every object on each relist. */
  onChange: (key: string) => void;
  /** Called after each relist with the keys it listed: what exists now, for sweeps of state kept outside the API. */
  onRelist?: (keys: ReadonlySet<string>) => void;
  onError: (error: unknown) => void;
  /**
   * Filters watch MODIFIED events (relists and other events always pass): e.g. skip changes that
   * only touch status, which the operator wrote itself.
   */
  modifiedMatters?: (previous: T, next: T) => boolean;
}

interface Meta {
  metadata: { name: string; namespace?: string; resourceVersion: string };
}

export class Informer<T extends Meta> {
  private readonly cache = new Map<string, T>();
  private abort: AbortController | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly kube: KubeClient,
    private readonly options: InformerOptions<T>,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const resourceVersion = await this.relist();
        failures = 0;
        await this.watch(resourceVersion);
      } catch (error) {
        if (this.stopped) break;
        this.options.onError(error);
        failures++;
        await sleep(Math.min(200 * 2 ** failures, 10_000));
      }
    }
  }

  private async relist(): Promise<string> {
    const list = await this.kube.get<{ metadata: { resourceVersion: string }; items: T[] }>(this.options.path);
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = keyOf(item);
      seen.add(key);
      this.cache.set(key, item);
      this.options.onChange(key);
    }
    for (const key of [...this.cache.keys()]) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.options.onChange(key);
      }
    }
    this.options.onRelist?.(seen);
    return list.metadata.resourceVersion;
  }

  private async watch(resourceVersion: string): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    let quiet: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (quiet) clearTimeout(quiet);
      quiet = setTimeout(() => abort.abort(), this.options.relistAfterMs);
    };
    arm();
    const sep = this.options.path.includes('?') ? '&' : '?';
    const timeoutSeconds = Math.max(1, Math.floor(this.options.relistAfterMs / 1000));
    let failure: unknown;
    try {
      await this.kube.watch(
        `${this.options.path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${resourceVersion}&timeoutSeconds=${timeoutSeconds}`,
        (event: WatchEvent) => {
          arm();
          if (event.type === 'ERROR') {
            failure = new Error(`watch error: ${JSON.stringify(event.object).slice(0, 500)}`);
            abort.abort();
            return;
          }
          if (event.type === 'BOOKMARK') return;
          const item = event.object as unknown as T;
          const key = keyOf(item);
          const previous = this.cache.get(key);
          if (event.type === 'DELETED') this.cache.delete(key);
          else this.cache.set(key, item);
          const matters = event.type !== 'MODIFIED' || previous === undefined || (this.options.modifiedMatters?.(previous, item) ?? true);
          if (matters) this.options.onChange(key);
        },
        abort.signal,
      );
    } finally {
      if (quiet) clearTimeout(quiet);
    }
    if (failure) throw failure;
  }
}

export function keyOf(item: Meta): string {
  return item.metadata.namespace ? `${item.metadata.namespace}/${item.metadata.name}` : item.metadata.name;
}
