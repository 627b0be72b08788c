import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createValidator } from './validator.js';
import { MAX_REQUEST_BYTES } from './request.js';

const project = { namespace: 'default', name: 'speed' };

test('the cache key covers the whole input: a safe and a dangerous edit of one file get their own answers', async () => {
  const v = await createValidator({ project, rateLimit: false });
  try {
    const safe = await v.validate({ agent: 'a', tool: 'Write', input: { file_path: 'keys/readme.md', content: 'hello' } });
    assert.equal(safe.decision, 'allow');
    const dangerous = await v.validate({ agent: 'a', tool: 'Write', input: { file_path: 'keys/readme.md', content: '-----BEGIN PRIVATE KEY-----\nMII' } });
    assert.equal(dangerous.decision, 'deny');
    assert.equal(dangerous.cached, false);
    // Key order is not part of the input's meaning.
    const again = await v.validate({ tool: 'Write', agent: 'a', input: { content: 'hello', file_path: 'keys/readme.md' } });
    assert.deepEqual([again.decision, again.tier, again.cached], ['allow', 'cache-l1', true]);
    // A different tool with the same input is a different question.
    const other = await v.validate({ agent: 'a', tool: 'Bash', input: { content: 'hello', file_path: 'keys/readme.md' } });
    assert.notEqual(other.tier, 'cache-l1');
  } finally {
    await v.close();
  }
});

test('agent-scoped rules keep one agent class from reusing another class\'s cached answer', async () => {
  const v = await createValidator({
    project,
    rateLimit: false,
    policy: { rules: [{ name: 'interns-no-push', priority: 10, decision: 'deny', agents: ['intern-*'], tools: ['Bash'], match: { command: '^git push' } }, { name: 'push-ok', decision: 'allow', tools: ['Bash'], match: { command: '^git push$' } }] },
  });
  try {
    const input = { command: 'git push' };
    assert.equal((await v.validate({ agent: 'senior', tool: 'Bash', input })).decision, 'allow');
    const intern = await v.validate({ agent: 'intern-7', tool: 'Bash', input });
    assert.deepEqual([intern.decision, intern.rule, intern.cached], ['deny', 'interns-no-push', false]);
    const otherSenior = await v.validate({ agent: 'lead', tool: 'Bash', input });
    assert.deepEqual([otherSenior.decision, otherSenior.tier], ['allow', 'cache-l1']);
  } finally {
    await v.close();
  }
});

test('malformed requests get a deny answer with the error, never a throw', async () => {
  const v = await createValidator({ project, rateLimit: false });
  try {
    const cyclic: Record<string, unknown> = { command: 'ls' };
    cyclic['self'] = cyclic;
    const bad: Array<[unknown, RegExp]> = [
      ['{not json', /not valid JSON/],
      ['[1,2]', /JSON object/],
      [null, /JSON object/],
      [42, /JSON object/],
      [{ agent: 'a', input: {} }, /"tool"/],
      [{ agent: '', tool: 'Bash', input: {} }, /"agent"/],
      [{ agent: 'a', tool: 'Bash', input: 'ls' }, /"input"/],
      [{ agent: 'a', tool: 'Bash', input: {}, context: [] }, /"context"/],
      [{ agent: 'a', tool: 'x'.repeat(300), input: {} }, /longer/],
      [{ agent: 'a', tool: 'Bash', input: cyclic }, /cyclic/],
      [{ agent: 'a', tool: 'Bash', input: { n: Number.NaN } }, /non-finite/],
      [JSON.stringify({ agent: 'a', tool: 'Write', input: { file_path: 'a', content: 'x'.repeat(MAX_REQUEST_BYTES) } }), /limit/],
      [{ agent: 'a', tool: 'Write', input: { file_path: 'a', content: 'x'.repeat(MAX_REQUEST_BYTES) } }, /larger/],
    ];
    for (const [request, why] of bad) {
      const a = await v.validate(request);
      assert.equal(a.decision, 'deny');
      assert.equal(a.tier, 'invalid');
      assert.match(a.error ?? '', why);
      assert.equal(typeof a.requestId, 'string');
    }
    // Unknown fields are tolerated; bytes work as well as text.
    const ok = await v.validate(Buffer.from(JSON.stringify({ agent: 'a', tool: 'Bash', input: { command: 'ls' }, extra: { future: true } })));
    assert.equal(ok.decision, 'allow');
    assert.equal(ok.error, undefined);
  } finally {
    await v.close();
  }
});

test('per-agent token buckets deny with rate-limited, other agents unaffected, refill over time', async () => {
  const v = await createValidator({ project, rateLimit: { perSecond: 20, burst: 3 } });
  try {
    const ask = (agent: string) => v.validate({ agent, tool: 'Bash', input: { command: 'ls' } });
    for (let i = 0; i < 3; i++) assert.equal((await ask('greedy')).decision, 'allow');
    const limited = await ask('greedy');
    assert.deepEqual([limited.decision, limited.reason, limited.tier], ['deny', 'rate-limited', 'rate-limit']);
    assert.equal((await ask('polite')).decision, 'allow');
    await new Promise((r) => setTimeout(r, 120));
    assert.equal((await ask('greedy')).decision, 'allow');
  } finally {
    await v.close();
  }
});

test('without a store, what needs an expert fails closed and says why', async () => {
  const v = await createValidator({ project, rateLimit: false });
  try {
    const a = await v.validate({ agent: 'a', tool: 'Bash', input: { command: 'npm install left-pad' } });
    assert.equal(a.decision, 'deny');
    assert.equal(a.tier, 'fail-closed');
    assert.match(a.reason, /no store/);
    // Not cached: a later run with an expert must still be asked.
    assert.equal((await v.validate({ agent: 'a', tool: 'Bash', input: { command: 'npm install left-pad' } })).tier, 'fail-closed');
  } finally {
    await v.close();
  }
});
