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

/** Request lines one read of /.bridge/validate answers; more are refused whole (ADR 0054). */
const MAX_VALIDATE_LINES = 64;

/**
 * The answer to what was written to /.bridge/validate: one JSON line per request line, in order,
 * each the validator's decision or an `{error}` object (no validator, validator failure). A request
 * line goes to the validator as text: parsing it is the validator's work, off this thread. Never
 * throws, so bad input can never fail the read or take the mount down.
 */
export async function validateAnswers(text: string, validator: Validator | undefined): Promise<string> {
  const requests = text.split('\n').filter((l) => l.trim() !== '');
  if (requests.length === 0) return answerLine({ error: 'empty request: write one JSON object on one line, then read the answer' });
  if (requests.length > MAX_VALIDATE_LINES) {
    return answerLine({ error: `${requests.length} request lines; at most ${MAX_VALIDATE_LINES} per read, so none was validated` });
  }
  let out = '';
  for (const request of requests) out += answerLine(await validateOne(request, validator));
  return out;
}

async function validateOne(request: string, validator: Validator | undefined): Promise<unknown> {
  if (!validator) return { error: 'no validator is configured for this mount' };
  try {
    return await validator.validate(request);
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

function answerLine(answer: unknown): string {
  return `${JSON.stringify(answer)}\n`;
}
