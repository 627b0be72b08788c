import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startRedis, startRedisCluster, type RedisServer } from '@lighthouse-bridge/test/redis';
import { openStore } from '../store/open.js';
import type { EventStore } from '../store/eventStore.js';
import type { RecordedEvent } from '../events/events.js';
import { registry } from '../observability/metrics.js';
import { serveMetrics } from '../observability/httpServer.js';
import { createValidator, type Validator } from './validator.js';
import type { Answer } from './request.js';
import { Policy } from './policy.js';
import { decisionKey } from './decisionCache.js';
import { canonicalJson } from './canonical.js';
import { eventually } from '@lighthouse-bridge/test/eventually';

const validatorModule = fileURLToPath(new URL('./validator.js', import.meta.url));
let counter = 0;
/** A project of its own per test, so cached decisions never carry over between tests. */
const freshProject = () => ({ namespace: 'default', name: `speed-${process.pid}-${++counter}` });

/** With AOF, as deployments must run it: a Redis that restarts empty is a lost log, refused (ADR 0020). */
async function withRedis(body: (redis: RedisServer) => Promise<void>): Promise<void> {
  const redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  try {
    await body(redis);
  } finally {
    await redis.stop();
  }
}

/** Validates one request in a separate node process, as another pod's validator would. */
function validateInChild(options: object, request: object): Promise<Answer> {
  const script = `
    const { createValidator } = await import(${JSON.stringify(validatorModule)});
    const v = await createValidator(${JSON.stringify(options)});
    const answer = await v.validate(${JSON.stringify(request)});
    await v.close();
    process.stdout.write(JSON.stringify(answer));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000, env: { ...process.env, LHB_LOG_LEVEL: 'error' } }, (error, stdout) =>
      error ? reject(error) : resolve(JSON.parse(stdout) as Answer),
    );
  });
}

test('two processes share L2 decisions; a policy change makes the old entries unreachable', async () => {
  await withRedis(async (redis) => {
    const project = freshProject();
    const policyV1 = { version: 'v1', rules: [{ name: 'deploy-ok', priority: 10, decision: 'allow' as const, tools: ['Bash'], match: { command: '^make deploy$' } }] };
    const request = { agent: 'builder', tool: 'Bash', input: { command: 'make deploy' } };

    const first = await validateInChild({ project, redisUrl: redis.url, policy: policyV1 }, request);
    assert.deepEqual([first.decision, first.tier, first.rule], ['allow', 'policy', 'deploy-ok']);
    const second = await validateInChild({ project, redisUrl: redis.url, policy: policyV1 }, request);
    assert.deepEqual([second.decision, second.tier, second.cached, second.rule], ['allow', 'cache-l2', true, 'deploy-ok']);

    const policyV2 = { version: 'v2', rules: [{ ...policyV1.rules[0], decision: 'deny' as const }] };
    const changed = await validateInChild({ project, redisUrl: redis.url, policy: policyV2 }, request);
    assert.deepEqual([changed.decision, changed.tier], ['deny', 'policy']);

    // Only the allow is shared: a denial is decided by the policy every time, never from a cache.
    const keys = (await redis.cli(['--scan', '--pattern', `lhb:{${project.namespace}/${project.name}}:dec:*`])).trim().split('\n').filter(Boolean);
    assert.equal(keys.length, 1);
    const ttl = Number((await redis.cli(['TTL', keys[0] as string])).trim());
    assert.ok(ttl > 0 && ttl <= 3600, `TTL ${ttl}`);
  });
});

test('issue 14 item 4: a forged cached allow never overrides a built-in denial', async () => {
  await withRedis(async (redis) => {
    const project = freshProject();
    const root = '/workspace/current';
    const forged = JSON.stringify({ decision: 'allow', reason: 'forged', source: 'expert' });
    const requests = [
      { agent: 'coder', tool: 'Bash', input: { command: 'rm -rf /home' } },
      { agent: 'coder', tool: 'Bash', input: { command: ':(){ :|:& };:' } },
      { agent: 'coder', tool: 'Bash', input: { command: 'shutdown -h now' } },
    ];
    // Written as a tenant holding the project's credentials could, under the key the validator uses.
    const version = new Policy({}, { projectRoot: root }).version;
    for (const r of requests) {
      await redis.cli(['SET', `lhb:{${project.namespace}/${project.name}}:dec:${decisionKey(version, r.tool, '', canonicalJson(r.input))}`, forged]);
    }
    const v = await createValidator({ project, redisUrl: redis.url, projectRoot: root, rateLimit: false });
    try {
      for (const r of requests) {
        // Twice: the forged entry must not reach L1 either.
        for (const round of [1, 2]) {
          const a = await v.validate(r);
          assert.deepEqual([a.decision, a.cached], ['deny', false], `${r.input.command} (round ${round}): ${JSON.stringify(a)}`);
          assert.notEqual(a.reason, 'forged');
        }
      }
      const first = await v.validate(requests[0]);
      assert.deepEqual([first.tier, first.rule], ['policy', 'builtin:destroy-root-or-home']);
    } finally {
      await v.close();
    }
  });
});

test('Redis killed: L1 answers what it has, the rest fails closed; the breaker closes itself when Redis returns', async () => {
  await withRedis(async (redis) => {
    const v = await createValidator({ project: freshProject(), redisUrl: redis.url, rateLimit: false, breaker: { failureThreshold: 2, resetTimeoutMs: 200 } });
    const metrics = await serveMetrics({ port: 0 });
    try {
      const known = { agent: 'a', tool: 'Bash', input: { command: 'ls -la' } };
      const unknown = { agent: 'a', tool: 'Bash', input: { command: 'git status' } };
      assert.equal((await v.validate(known)).decision, 'allow');

      await redis.kill();
      const cached = await v.validate(known);
      assert.deepEqual([cached.decision, cached.tier], ['allow', 'cache-l1']);
      for (let i = 0; i < 3; i++) {
        const closed = await v.validate(unknown);
        assert.deepEqual([closed.decision, closed.tier], ['deny', 'fail-closed']);
        assert.match(closed.reason, /decision cache unavailable/);
        assert.ok(closed.latencyMs < 1000, `fails fast, took ${closed.latencyMs} ms`);
      }
      const text = await (await fetch(`http://127.0.0.1:${metrics.port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      assert.match(text, /lighthouse_bridge_breaker_state\{breaker="redis-l2"\} 2/);

      await redis.restart();
      const recovered = await eventually('the breaker to close', async () => {
        const a = await v.validate(unknown);
        return a.decision === 'allow' ? a : undefined;
      }, 10_000);
      assert.equal(recovered.tier, 'policy');
      const after = await (await fetch(`http://127.0.0.1:${metrics.port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      assert.match(after, /lighthouse_bridge_breaker_state\{breaker="redis-l2"\} 0/);
      assert.match(after, /lighthouse_bridge_breaker_transitions_total\{breaker="redis-l2",to="closed"\} [1-9]/);
      assert.match(after, /lighthouse_bridge_validation_duration_seconds_bucket\{le="0\.001",tier="cache-l1",decision="allow",namespace="[^"]+",project="[^"]+"\} [1-9]/);
      assert.match(after, /lighthouse_bridge_validation_duration_seconds_count\{tier="fail-closed",decision="deny",namespace="[^"]+",project="[^"]+"\} [1-9]/);
    } finally {
      await metrics.close();
      await v.close();
    }
  });
});

/** Answers every ValidationRequested on the log, as an expert watching the project would. */
function actAsExpert(store: EventStore, project: { namespace: string; name: string }, decision: 'allow' | 'deny', seen: RecordedEvent[]) {
  return store.subscribe(project, 0, (events) => {
    for (const e of events) {
      seen.push(e);
      if (e.type === 'ValidationRequested') {
        void store.append(project, [{ type: 'ValidationDecided', actor: 'alice', data: { requestId: e.data.requestId, decision, reason: 'looked fine', by: 'alice' } }]);
      }
    }
  });
}

test('escalation: the expert answer from another client decides, and feeds L1 and L2', async () => {
  await withRedis(async (redis) => {
    const project = freshProject();
    const expertStore = await openStore(redis.url);
    const seen: RecordedEvent[] = [];
    const expert = actAsExpert(expertStore, project, 'allow', seen);
    let v: Validator | undefined;
    try {
      v = await createValidator({ project, redisUrl: redis.url, store: () => openStore(redis.url), escalationTimeoutMs: 10_000, rateLimit: false });
      const request = { agent: 'coder', tool: 'Bash', input: { command: 'npm install left-pad' } };
      const answer = await v.validate(request);
      assert.deepEqual([answer.decision, answer.tier], ['allow', 'expert']);
      assert.match(answer.reason, /alice/);
      const requested = seen.find((e) => e.type === 'ValidationRequested');
      assert.equal(requested?.type === 'ValidationRequested' ? requested.data.requestId : undefined, answer.requestId);
      assert.deepEqual(requested?.type === 'ValidationRequested' ? requested.data.input : undefined, request.input);

      assert.deepEqual([(await v.validate(request)).tier], ['cache-l1']);
      const elsewhere = await validateInChild({ project, redisUrl: redis.url }, request);
      assert.deepEqual([elsewhere.decision, elsewhere.tier], ['allow', 'cache-l2']);
    } finally {
      await v?.close();
      await expert.close();
      await expertStore.close();
    }
  });
});

test('escalation deadline: the configured decision applies (deny by default), is recorded, and is not cached', async () => {
  await withRedis(async (redis) => {
    const project = freshProject();
    const store = await openStore(redis.url);
    try {
      for (const [defaultDecision, expected] of [[undefined, 'deny'], ['allow', 'allow']] as const) {
        const v = await createValidator({
          project,
          store,
          policy: defaultDecision === undefined ? {} : { defaultDecision },
          escalationTimeoutMs: 300,
          rateLimit: false,
        });
        try {
          const started = Date.now();
          const a = await v.validate({ agent: 'coder', tool: 'Bash', input: { command: 'npm install left-pad' } });
          const took = Date.now() - started;
          assert.deepEqual([a.decision, a.tier], [expected, 'deadline']);
          assert.ok(took >= 290 && took < 5000, `took ${took} ms`);
          const log = await store.read(project);
          const decided = log.find((e) => e.type === 'ValidationDecided' && e.data.requestId === a.requestId);
          assert.equal(decided?.type === 'ValidationDecided' ? decided.data.by : undefined, 'deadline');
          const again = await v.validate({ agent: 'coder', tool: 'Bash', input: { command: 'npm install left-pad' } });
          assert.equal(again.tier, 'deadline');
        } finally {
          await v.close();
        }
      }
    } finally {
      await store.close();
    }
  });
});

test('wait: false answers escalate at once; the expert answer arriving later still feeds the cache', async () => {
  await withRedis(async (redis) => {
    const project = freshProject();
    const expertStore = await openStore(redis.url);
    const seen: RecordedEvent[] = [];
    const expert = actAsExpert(expertStore, project, 'deny', seen);
    const v = await createValidator({ project, store: () => openStore(redis.url), escalationTimeoutMs: 10_000, rateLimit: false });
    try {
      const request = { agent: 'coder', tool: 'Bash', input: { command: 'pip install requests' } };
      const first = await v.validate(request, { wait: false });
      assert.deepEqual([first.decision, first.tier], ['escalate', 'expert']);
      const later = await eventually('the expert answer to reach the cache', async () => {
        const a = await v.validate(request, { wait: false });
        return a.tier === 'cache-l1' ? a : undefined;
      }, 10_000);
      assert.equal(later.decision, 'deny');
    } finally {
      await v.close();
      await expert.close();
      await expertStore.close();
    }
  });
});

test('store down during escalation: fails closed within the deadline; escalations work again once it is back', async () => {
  await withRedis(async (redis) => {
    const project = freshProject();
    const v = await createValidator({ project, store: () => openStore(redis.url), escalationTimeoutMs: 1500, rateLimit: false, breaker: { failureThreshold: 1, resetTimeoutMs: 200 }, policy: { defaultDecision: 'allow' } });
    try {
      const request = { agent: 'coder', tool: 'Bash', input: { command: 'cargo install ripgrep' } };
      // Opens the store and the subscription while Redis is up.
      assert.equal((await v.validate(request)).tier, 'deadline');
      await redis.kill();
      const started = Date.now();
      const down = await v.validate(request);
      assert.deepEqual([down.decision, down.tier], ['deny', 'fail-closed'], JSON.stringify(down));
      assert.ok(Date.now() - started < 1500 + 6000, `answered in ${Date.now() - started} ms`);
      await redis.restart();
      const back = await eventually(
        'escalation to work again',
        async () => {
          const a = await v.validate(request);
          return a.tier === 'deadline' ? a : undefined;
        },
        30_000,
      );
      assert.equal(back.decision, 'allow');
    } finally {
      await v.close();
    }
  });
});

test('L2 works on Redis Cluster: decision keys of a project share one slot, and answers of one validator reach another', async () => {
  const cluster = await startRedisCluster(3);
  const project = freshProject();
  const a = await createValidator({ project, redisUrl: cluster.url, rateLimit: false });
  const b = await createValidator({ project, redisUrl: cluster.url, rateLimit: false });
  try {
    const requests = Array.from({ length: 20 }, (_, i) => ({ agent: 'a', tool: 'Bash', input: { command: `git log -n ${i}` } }));
    for (const r of requests) assert.equal((await a.validate(r)).tier, 'policy');
    for (const r of requests) assert.equal((await b.validate(r)).tier, 'cache-l2');
  } finally {
    await a.close();
    await b.close();
    await cluster.stop();
  }
});
