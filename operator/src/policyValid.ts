import { Policy, PolicyError } from '@lighthouse-bridge/core/speed-layer';
import type { BridgeProjectSpec } from './bridgeProject.js';
import type { ObservedCondition } from './conditions.js';

/**
 * The PolicyValid condition: the spec's policy compiled as every node plugin compiles it (core's
 * `Policy`, RE2 patterns). Admission refuses most bad policies (ADR 0064), but an object stored
 * before the CRD tightened, or a pattern Go's RE2 takes and the nodes' does not, reaches us; the
 * message is core's, which names the rule and the field.
 */
export function policyConditionOf(spec: BridgeProjectSpec | undefined): ObservedCondition {
  try {
    new Policy(spec?.policy ?? {});
    return { type: 'PolicyValid', status: 'True', reason: 'Compiled', message: 'policy compiles as node plugins compile it' };
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    return { type: 'PolicyValid', status: 'False', reason: 'InvalidPolicy', message: `spec.policy: ${error.message}` };
  }
}

/** What nodes enforce meanwhile, appended to an InvalidPolicy message: the config is not replaced by one they would refuse. */
export function keptConfigNote(generation: number | undefined): string {
  return generation === undefined
    ? 'no project config is written until the policy is fixed'
    : `the project config of generation ${generation} stays in Redis, and node plugins keep enforcing it`;
}
