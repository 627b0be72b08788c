import { InvalidRequestError } from './request.js';

export const MAX_INPUT_DEPTH = 64;

/**
 * JSON with object keys sorted at every level, so two inputs that differ only in key order get one
 * cache key, and any other difference (a second file, other content) gets its own. Values JSON
 * cannot represent (functions, cycles, non-finite numbers) are refused rather than silently dropped,
 * because a dropped field would make two different inputs share a decision.
 */
export function canonicalJson(value: unknown): string {
  const seen = new Set<object>();
  let depth = 0;
  const walk = (v: unknown): string => {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'string':
        return JSON.stringify(v);
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        if (!Number.isFinite(v)) throw new InvalidRequestError('input holds a non-finite number');
        return JSON.stringify(v);
      case 'object': {
        if (seen.has(v)) throw new InvalidRequestError('input is cyclic');
        // Deeper than any tool's input; without a bound, deep nesting overflows the stack.
        if (++depth > MAX_INPUT_DEPTH) throw new InvalidRequestError(`input is nested deeper than ${MAX_INPUT_DEPTH} levels`);
        seen.add(v);
        let out: string;
        if (Array.isArray(v)) {
          out = `[${v.map(walk).join(',')}]`;
        } else {
          const obj = v as Record<string, unknown>;
          const keys = Object.keys(obj)
            .filter((k) => obj[k] !== undefined)
            .sort();
          out = `{${keys.map((k) => `${JSON.stringify(k)}:${walk(obj[k])}`).join(',')}}`;
        }
        seen.delete(v);
        depth--;
        return out;
      }
      default:
        throw new InvalidRequestError(`input holds a ${typeof v}, which JSON cannot carry`);
    }
  };
  return walk(value);
}
