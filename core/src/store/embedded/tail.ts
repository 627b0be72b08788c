import type { RecordedEvent } from '../../events/events.js';
import type { Subscription } from '../eventStore.js';
import type { ProjectLog } from './projectLog.js';

const PAGE = 1000;

/**
 * A live subscription: reads from its own position whenever the log says the head may have
 * moved, so each event is delivered once and in order however the wake-ups bunch up.
 */
export class Tail implements Subscription {
  private next: number;
  private running = false;
  private again = false;
  private closed = false;
  private readonly unwatch: () => void;

  constructor(
    private readonly log: ProjectLog,
    afterSeq: number,
    private readonly onEvents: (events: RecordedEvent[]) => void,
    private readonly onError: ((error: Error) => void) | undefined,
    private readonly onClose: (tail: Tail) => void,
  ) {
    this.next = afterSeq + 1;
    this.unwatch = log.watch(() => this.poke());
    this.poke();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unwatch();
    this.onClose(this);
  }

  private poke(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.again = false;
        for (;;) {
          const events = await this.log.read(this.next, Number.MAX_SAFE_INTEGER, PAGE);
          if (this.closed || events.length === 0) break;
          this.next = events.at(-1)!.seq + 1;
          this.onEvents(events);
        }
      } while (this.again && !this.closed);
    } catch (error) {
      if (!this.closed) {
        void this.close();
        this.onError?.(error instanceof Error ? error : new Error(String(error)));
      }
    } finally {
      this.running = false;
    }
  }
}
