import type { RedisClient } from '../../redis/client.js';
import type { LogRegression } from '../eventStore.js';
import { seqOfEntryId, type StreamEntry } from './log.js';

/**
 * The highest head this store has seen per log, and the logs Redis later showed shorter: a Redis
 * restarted without persistence (or a log deleted behind our back) has lost acknowledged events.
 * Once seen, a regression stays for the life of the store, even if the log grows past the old head
 * again: events numbered after the loss are a different history from the one this process (and its
 * mounts' state) knows, so appending or tailing on would mix the two (ADR 0020).
 */
export class LogHeads {
  private readonly highest = new Map<string, number>();
  private readonly regressed = new Map<string, LogRegression>();

  constructor(private readonly onRegressed: (log: string, regression: LogRegression) => void) {}

  /** The head an append must find at least; the append script refuses below it. */
  floor(log: string): number {
    return this.highest.get(log) ?? 0;
  }

  /** Asks Redis for the head of `log` and records the answer (a loss against the floor known when asked). */
  async look(client: RedisClient, log: string): Promise<number> {
    const known = this.floor(log);
    const [last] = (await client.xrevrange(log, '+', '-', 'COUNT', 1)) as StreamEntry[];
    const head = last ? seqOfEntryId(last[0]) : 0;
    this.observe(log, head, known);
    return head;
  }

  /** Records that `log` holds event `seq` (read or delivered), so its head is at least that. */
  saw(log: string, seq: number): void {
    if (seq > (this.highest.get(log) ?? 0)) this.highest.set(log, seq);
  }

  /**
   * Records that Redis answered `head` as the head of `log` to a request sent when `floor(log)` was
   * `knownWhenAsked`. Only that value counts as a loss: other connections (the tail, other calls)
   * may have raised the floor while the answer was on its way.
   */
  observe(log: string, head: number, knownWhenAsked: number): void {
    this.saw(log, head);
    if (head >= knownWhenAsked) return;
    if (this.regressed.has(log)) return;
    const regression = { knownHead: knownWhenAsked, storeHead: head, since: new Date().toISOString() };
    this.regressed.set(log, regression);
    this.onRegressed(log, regression);
  }

  regression(log: string): LogRegression | undefined {
    return this.regressed.get(log);
  }
}

/** The message every refusal and report uses, so logs, errors and status say the same thing. */
export function describeRegression(log: string, r: LogRegression): string {
  return (
    `${log} went backwards: this process saw head ${r.knownHead}, Redis now has ${r.storeHead} ` +
    `(Redis lost acknowledged events, e.g. restarted without persistence); appends refused until the node plugin restarts (ADR 0020)`
  );
}
