export { createValidator, type Validator, type ValidatorOptions, type ValidateOptions } from './validator.js';
export type { Answer, Tier, ValidationRequest } from './request.js';
export { MAX_REQUEST_BYTES } from './request.js';
export { Policy, PolicyError, DEFAULT_ESCALATION_TIMEOUT_MS } from './policy.js';
export { loadPolicyFile } from './policyFile.js';
export { readProjectPolicy } from './projectPolicy.js';
export { canonicalJson } from './canonical.js';
