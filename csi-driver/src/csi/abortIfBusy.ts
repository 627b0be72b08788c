import { aborted } from './errors.js';

/**
 * One operation per key at a time, refusing rather than waiting: the CSI spec asks a plugin to
 * answer ABORTED when an operation is already in flight for the same volume or target, and the CO
 * retries.
 */
export class AbortIfBusy {
  private readonly busy = new Set<string>();

  async run<T>(key: string, operation: () => Promise<T>): Promise<T> {
    if (this.busy.has(key)) throw aborted(`an operation on ${key} is already in progress`);
    this.busy.add(key);
    try {
      return await operation();
    } finally {
      this.busy.delete(key);
    }
  }
}
