import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keptConfigNote, policyConditionOf } from './policyValid.js';

describe('PolicyValid: the policy compiled as node plugins compile it', () => {
  it('is True for no policy and for RE2 patterns', () => {
    assert.equal(policyConditionOf(undefined).status, 'True');
    assert.equal(policyConditionOf({ policy: { rules: [{ name: 'r', decision: 'deny', match: { command: '(?i)rm\\s+-rf', content: '\\pL+' } }] } }).status, 'True');
  });

  it('names the rule and the field of a pattern RE2 refuses', () => {
    const rules = [
      { name: 'ok', decision: 'allow' as const, match: { paths: ['src/**'] } },
      { name: 'peek', decision: 'deny' as const, match: { content: 'secret(?=s)' } },
    ];
    const c = policyConditionOf({ policy: { rules } });
    assert.deepEqual([c.type, c.status, c.reason], ['PolicyValid', 'False', 'InvalidPolicy']);
    assert.match(c.message, /^spec\.policy: policy rule 2 \("peek"\): match\.content is not a valid regular expression: /);
  });

  it('refuses what admission would also refuse, should an old CRD have let it through', () => {
    assert.match(policyConditionOf({ policy: { escalationTimeoutSeconds: 0 } }).message, /^spec\.policy: escalationTimeoutSeconds must be/);
  });

  it('says what nodes enforce meanwhile', () => {
    assert.equal(keptConfigNote(4), 'the project config of generation 4 stays in Redis, and node plugins keep enforcing it');
    assert.equal(keptConfigNote(undefined), 'no project config is written until the policy is fixed');
  });
});
