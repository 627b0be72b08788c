import type { RecordedEvent } from '@lighthouse-bridge/core';

/** Answers `/.bridge/validate`; the speed layer plugs in here. */
export interface Validator {
  validate(request: unknown): Promise<unknown>;
}

/** One event as a JSON line: the format of history/log and streams/events. */
export function renderLogLine(event: RecordedEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/** A JSON document for people and tools alike: .bridge/status, shadows/<path>.json, context manifests. */
export function renderJson(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * The answer to one request written to /.bridge/validate: the validator's decision, or an
 * `{error}` object for a malformed request, a missing validator or a validator failure. Never throws,
 * so bad input can never fail the read or take the mount down.
 */
export async function validateAnswer(text: string, validator: Validator | undefined): Promise<unknown> {
  const line = text.split('\n').find((l) => l.trim() !== '');
  if (line === undefined) return { error: 'empty request: write one JSON object on one line, then read the answer' };
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch (error) {
    return { error: `malformed JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) return { error: 'the request must be a JSON object' };
  if (!validator) return { error: 'no validator is configured for this mount' };
  try {
    return await validator.validate(request);
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}
