import type { RecordedEvent } from '@lighthouse-bridge/core';

/** One event as a JSON line: the format of history/log and streams/events. */
export function renderLogLine(event: RecordedEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/** A JSON document for people and tools alike: .bridge/status, shadows/<path>.json, context manifests. */
export function renderJson(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
}
