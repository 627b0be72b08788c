import { canonicalJson } from './canonical.js';
import { decisionKey } from './decisionCache.js';
import { factsOf } from './facts.js';
import type { Policy, Verdict } from './policy.js';
import { InvalidRequestError, MAX_REQUEST_BYTES, parseRequest, type ValidationRequest } from './request.js';
import { scoreRisk } from './riskScorer.js';

/**
 * The deterministic part of a validation: what the rules and the risk scorer say about a request,
 * and its cache key. It is all CPU work on untrusted input, so a mount runs it off its own thread.
 */
export type Judgement =
  | {
      kind: 'judged';
      agent: string;
      tool: string;
      key: string;
      verdict: Verdict;
      tier: 'policy' | 'risk';
      /** Only when the verdict is `escalate`: the expert needs it, nothing else does (and it may be 1 MiB). */
      request?: ValidationRequest;
    }
  | { kind: 'invalid'; error: string }
  /** Not judged at all (queue full, deadline, worker failure): the caller fails closed. */
  | { kind: 'unavailable'; reason: string };

export function judge(policy: Policy, raw: unknown): Judgement {
  let request: ValidationRequest;
  let canonicalInput: string;
  try {
    request = parseRequest(raw);
    canonicalInput = canonicalJson(request.input);
    // A UTF-16 length is at most 3 UTF-8 bytes per unit: count bytes only when it could matter.
    if (canonicalInput.length * 3 > MAX_REQUEST_BYTES && Buffer.byteLength(canonicalInput) > MAX_REQUEST_BYTES) throw new InvalidRequestError(`input is larger than ${MAX_REQUEST_BYTES} bytes`);
  } catch (error) {
    if (!(error instanceof InvalidRequestError)) throw error;
    return { kind: 'invalid', error: error.message };
  }
  const key = decisionKey(policy.version, request.tool, policy.agentClass(request.agent), canonicalInput);
  const facts = factsOf(request, policy.projectRoot);
  const ruled = policy.evaluate(facts);
  const verdict = ruled ?? scoreRisk(facts);
  const judged: Judgement = { kind: 'judged', agent: request.agent, tool: request.tool, key, verdict, tier: ruled === undefined ? 'risk' : 'policy' };
  if (verdict.decision === 'escalate') judged.request = request;
  return judged;
}
