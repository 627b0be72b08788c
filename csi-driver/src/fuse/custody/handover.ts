import type { KeeperClient } from './keeper.js';

/** How long prepared mounts wait for the others before the predecessor is retired anyway. */
const GATHER_TIMEOUT_MS = 15_000;

/**
 * A rolling upgrade's takeover (ADR 0083): the new plugin prepares every mount its predecessor
 * serves (project loaded, journal at hand) while the predecessor still serves them, then retires it
 * ONCE for all and serves the same connections. What the pods see is only the gap between the
 * predecessor's exit and the first requests this process reads.
 */
export class Handover {
  private readonly names: Set<string>;
  private arrived = 0;
  private retired: Promise<void> | undefined;
  private fire!: () => void;
  private readonly gathered = new Promise<void>((resolve) => (this.fire = resolve));
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly predecessor: KeeperClient,
    private readonly log: (message: string, fields: Record<string, unknown>) => void,
  ) {
    this.names = new Set(predecessor.list());
    this.timer = setTimeout(() => this.fire(), GATHER_TIMEOUT_MS);
    this.timer.unref();
    if (this.names.size === 0) this.fire();
  }

  /** Whether the predecessor holds `name`: that mount is taken over through this handover. */
  holds(name: string): boolean {
    return this.names.has(name);
  }

  /**
   * One mount is ready to serve: resolves once the predecessor has stopped serving (all prepared
   * mounts arrived, or the others gave up, or the timeout passed).
   */
  ready(): Promise<void> {
    if (++this.arrived >= this.names.size) this.fire();
    return (this.retired ??= this.gathered.then(() => this.retire()));
  }

  /** One mount will never be ready (it failed to prepare): the others do not wait for it. */
  abandon(name: string): void {
    if (this.names.delete(name) && this.arrived >= this.names.size) this.fire();
  }

  private retire(): void {
    clearTimeout(this.timer);
    const started = performance.now();
    // Synchronous: nothing of ours serves these mounts yet, and it returns once the old command is gone.
    this.predecessor.retire();
    this.log('predecessor retired', { mounts: this.arrived, ms: Math.round(performance.now() - started) });
  }
}
