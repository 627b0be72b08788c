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

test('judged on a worker thread: same answers, and the caller\'s thread stays free while a huge request is judged', async () => {
  const v = await createValidator({ project, rateLimit: false, judgeThread: true, policy: { rules: [{ name: 'no-deploys', priority: 500, decision: 'deny', match: { command: '^kubectl apply' } }] } });
  try {
    assert.deepEqual(pick(await v.validate({ agent: 'a', tool: 'Bash', input: { command: 'rm -rf /' } })), ['deny', 'policy', 'builtin:destroy-root-or-home']);
    assert.deepEqual(pick(await v.validate({ agent: 'a', tool: 'Bash', input: { command: 'kubectl apply -f x' } })), ['deny', 'policy', 'no-deploys']);
    assert.deepEqual(pick(await v.validate('{"agent":"a","tool":"Bash","input":{"command":"ls"}}')), ['allow', 'policy', 'builtin:read-only-commands']);
    assert.deepEqual(pick(await v.validate('{"agent":"a","tool":"Bash","input":{"command":"ls"}}')), ['allow', 'cache-l1', 'builtin:read-only-commands']);
    const invalid = await v.validate('{not json');
    assert.deepEqual([invalid.decision, invalid.tier], ['deny', 'invalid']);
    assert.match(invalid.error ?? '', /not valid JSON/);

    // The largest request there is: while it is judged, timers on this thread keep firing.
    const huge = JSON.stringify({ agent: 'a', tool: 'Bash', input: { command: `echo ${'a '.repeat(MAX_REQUEST_BYTES / 2 - 64)}` } });
    let longestGapMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGapMs = Math.max(longestGapMs, now - last);
      last = now;
    }, 5);
    const answer = await v.validate(huge);
    clearInterval(ticker);
    assert.equal(answer.tier === 'fail-closed' || answer.decision === 'allow', true, JSON.stringify(answer));
    assert.ok(longestGapMs < 250, `the caller's thread was blocked for ${longestGapMs.toFixed(0)} ms`);
  } finally {
    await v.close();
  }
});

test('a worker thread past its deadline or queue answers deny (fail closed)', async () => {
  const v = await createValidator({ project, rateLimit: false, judgeThread: { deadlineMs: 1, maxQueued: 2 } });
  try {
    const big = JSON.stringify({ agent: 'a', tool: 'Bash', input: { command: `echo ${'a '.repeat(MAX_REQUEST_BYTES / 2 - 64)}` } });
    const answers = await Promise.all([v.validate(big), v.validate(big), v.validate(big)]);
    for (const a of answers) assert.deepEqual([a.decision, a.tier], ['deny', 'fail-closed']);
    assert.match(answers[0]?.reason ?? '', /did not finish within 1 ms; failing closed/);
    assert.match(answers[2]?.reason ?? '', /2 validations are already waiting; failing closed/);
  } finally {
    await v.close();
  }
});

test('validators share one judge thread: 60 of them (a node plugin with 60 mounts) cost memory once, each with its own policy', async () => {
  const rssBefore = process.memoryUsage().rss;
  const validators = await Promise.all(
    Array.from({ length: 60 }, (_, i) =>
      createValidator({ project: { namespace: 'default', name: `m${i}` }, rateLimit: false, judgeThread: true, policy: { rules: [{ name: `no-${i}`, priority: 500, decision: 'deny', match: { command: `^deploy-${i}$` } }] } }),
    ),
  );
  try {
    const answers = await Promise.all(validators.map((v, i) => v.validate({ agent: 'a', tool: 'Bash', input: { command: `deploy-${(i + 1) % 60}` } })));
    // Each validator judged with its own rules: its neighbour's command is not denied by them.
    for (const a of answers) assert.notEqual(a.rule?.startsWith('no-'), true, JSON.stringify(a));
    const own = await validators[7]!.validate({ agent: 'a', tool: 'Bash', input: { command: 'deploy-7' } });
    assert.deepEqual([own.decision, own.rule], ['deny', 'no-7']);
    // A thread per validator measured ~10 MB each (600 MB here).
    const grownMb = (process.memoryUsage().rss - rssBefore) / 1048576;
    assert.ok(grownMb < 150, `RSS grew by ${grownMb.toFixed(0)} MB for 60 validators`);
  } finally {
    await Promise.all(validators.map((v) => v.close()));
  }
});

test("one validator's full queue does not take another's places on the shared thread", async () => {
  const flooded = await createValidator({ project, rateLimit: false, judgeThread: { maxQueued: 2 } });
  const other = await createValidator({ project: { namespace: 'default', name: 'other' }, rateLimit: false, judgeThread: { maxQueued: 2 } });
  try {
    const big = JSON.stringify({ agent: 'a', tool: 'Bash', input: { command: `echo ${'a '.repeat(MAX_REQUEST_BYTES / 2 - 64)}` } });
    const floods = [flooded.validate(big), flooded.validate(big), flooded.validate(big)];
    const mine = await other.validate({ agent: 'a', tool: 'Bash', input: { command: 'ls' } });
    assert.deepEqual([mine.decision, mine.tier], ['allow', 'policy']);
    const answers = await Promise.all(floods);
    assert.match(answers[2]?.reason ?? '', /2 validations are already waiting/);
  } finally {
    await flooded.close();
    await other.close();
  }
});

function pick(a: { decision: string; tier: string; rule?: string }): [string, string, string | undefined] {
  return [a.decision, a.tier, a.rule];
}
