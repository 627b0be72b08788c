import type { Decision } from '../config/projectConfig.js';

/** "May `agent` run `tool` with `input`?" */
export interface ValidationRequest {
  agent: string;
  tool: string;
  /** The tool's arguments as the agent would pass them (e.g. `{command}` or `{file_path, content}`). */
  input: Record<string, unknown>;
  /** Free-form extra facts (session, cwd); logged, never part of the decision or its cache key. */
  context?: Record<string, unknown>;
}

/** Which part of the speed layer produced the answer. */
export type Tier =
  | 'cache-l1'
  | 'cache-l2'
  | 'policy'
  | 'risk'
  | 'expert'
  | 'deadline'
  | 'rate-limit'
  | 'fail-closed'
  | 'invalid';

export interface Answer {
  /** `escalate` only when the caller asked not to wait for the expert. */
  decision: Decision;
  reason: string;
  /** The policy rule that decided, when one did. */
  rule?: string;
  tier: Tier;
  cached: boolean;
  latencyMs: number;
  requestId: string;
  /** Set when the request itself was unusable; the decision is then `deny`. */
  error?: string;
}

/** Requests larger than this (canonical JSON bytes) are refused, so one caller cannot stall the rest. */
export const MAX_REQUEST_BYTES = 1024 * 1024;
const MAX_NAME_LENGTH = 256;

export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';
}

/**
 * Checks the shape of an untrusted request: a JSON text, bytes, or an already parsed value. Unknown
 * fields are tolerated (newer clients); missing or mistyped known ones are not.
 */
export function parseRequest(raw: unknown): ValidationRequest {
  let value = raw;
  if (typeof raw === 'string' || raw instanceof Uint8Array) {
    const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.byteLength;
    if (size > MAX_REQUEST_BYTES) throw new InvalidRequestError(`request is ${size} bytes; the limit is ${MAX_REQUEST_BYTES}`);
    const text = typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8');
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new InvalidRequestError(`request is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (!isPlainObject(value)) throw new InvalidRequestError('request must be a JSON object with agent, tool and input');
  const { agent, tool, input, context } = value;
  const name = (field: string, v: unknown): string => {
    if (typeof v !== 'string' || v.length === 0) throw new InvalidRequestError(`"${field}" must be a non-empty string`);
    if (v.length > MAX_NAME_LENGTH) throw new InvalidRequestError(`"${field}" is longer than ${MAX_NAME_LENGTH} characters`);
    return v;
  };
  const request: ValidationRequest = { agent: name('agent', agent), tool: name('tool', tool), input: {} };
  if (!isPlainObject(input)) throw new InvalidRequestError('"input" must be a JSON object');
  request.input = input;
  if (context !== undefined) {
    if (!isPlainObject(context)) throw new InvalidRequestError('"context" must be a JSON object when given');
    request.context = context;
  }
  return request;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
