/**
 * What a mount asks about each request line written to `/.bridge/validate`. The speed layer's
 * Validator is one; the mount needs nothing else of it.
 */
export interface ValidateBackend {
  validate(request: unknown): Promise<unknown>;
}

/** Request lines one read of /.bridge/validate answers; more are refused whole (ADR 0054). */
const MAX_VALIDATE_LINES = 64;

/**
 * The answer to what was written to /.bridge/validate: one JSON line per request line, in order,
 * each the validator's decision or an `{error}` object (no validator, validator failure). A request
 * line goes to the validator as text: parsing it is the validator's work, off this thread. Never
 * throws, so bad input can never fail the read or take the mount down.
 */
export async function validateAnswers(text: string, validator: ValidateBackend | undefined): Promise<string> {
  const requests = text.split('\n').filter((l) => l.trim() !== '');
  if (requests.length === 0) return answerLine({ error: 'empty request: write one JSON object on one line, then read the answer' });
  if (requests.length > MAX_VALIDATE_LINES) {
    return answerLine({ error: `${requests.length} request lines; at most ${MAX_VALIDATE_LINES} per read, so none was validated` });
  }
  let out = '';
  for (const request of requests) out += answerLine(await validateOne(request, validator));
  return out;
}

async function validateOne(request: string, validator: ValidateBackend | undefined): Promise<unknown> {
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
