import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStore, type EventStore } from '@lighthouse-bridge/core';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';

/** The BUILT CLI, run as users run it. */
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], timeoutMs = 20_000): { done: Promise<Result>; kill: () => void } {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, LHB_STORE: '', LHB_ACTOR: '', LHB_LOG_LEVEL: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<Result>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lighthouse-bridge ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: out, stderr: err });
    });
  });
  return { done, kill: () => child.kill('SIGKILL') };
}

const run = (args: string[]) => cli(args).done;

describe('validate and decide', () => {
  let redis: RedisServer;
  let store: EventStore;
  let tmp: { dir: string; remove: () => Promise<void> };
  let n = 0;
  const project = () => `cli-validate-${process.pid}-${++n}`;

  before(async () => {
    redis = await startRedis();
    store = await openStore(redis.url);
    tmp = await tempDir('lhb-validate-');
  });
  after(async () => {
    await store?.close();
    await redis?.stop();
    await tmp?.remove();
  });

  it('prints the JSON answer and exits 0 for allow, 2 for deny, 1 for errors', async () => {
    const p = project();
    const allow = await run(['validate', p, '--agent', 'a', '--tool', 'Bash', '--input', '{"command":"git status"}', '--store', redis.url]);
    assert.equal(allow.code, 0, allow.stderr);
    const answer = JSON.parse(allow.stdout) as Record<string, unknown>;
    assert.equal(answer['decision'], 'allow');
    assert.equal(answer['rule'], 'builtin:read-only-commands');
    assert.equal(typeof answer['requestId'], 'string');

    const deny = await run(['validate', p, '--agent', 'a', '--tool', 'Bash', '--input', '{"command":"sudo rm -rf --no-preserve-root /"}', '--store', redis.url]);
    assert.equal(deny.code, 2);
    assert.equal((JSON.parse(deny.stdout) as { decision: string }).decision, 'deny');

    for (const args of [
      ['validate', p, '--agent', 'a', '--tool', 'Bash', '--input', '{"command":'],
      ['validate', p, '--agent', 'a', '--input', '{}'],
      ['validate', 'Not_A_Project', '--agent', 'a', '--tool', 'Bash', '--input', '{}'],
      ['validate', p, '--agent', 'a', '--tool', 'Bash', '--input', '"just a string"'],
      ['validate', p, '--agent', 'a', '--tool', 'Bash', '--input', '{}', '--policy', join(tmp.dir, 'missing.yaml')],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
    }
  });

  it('--policy YAML: project rules are honoured by priority over built-ins, and replace mode drops them', async () => {
    const extend = join(tmp.dir, 'extend.yaml');
    await writeFile(extend, 'version: "7"\nrules:\n  - name: no-git-status-for-bots\n    priority: 5000\n    decision: deny\n    agents: ["bot-*"]\n    tools: [Bash]\n    match: { command: "^git status" }\n');
    const p = project();
    const bot = await run(['validate', p, '--agent', 'bot-1', '--tool', 'Bash', '--input', '{"command":"git status"}', '--policy', extend]);
    assert.equal(bot.code, 2, bot.stdout);
    assert.equal((JSON.parse(bot.stdout) as { rule: string }).rule, 'no-git-status-for-bots');
    const human = await run(['validate', p, '--agent', 'ann', '--tool', 'Bash', '--input', '{"command":"git status"}', '--policy', extend]);
    assert.equal(human.code, 0, human.stdout);

    const replace = join(tmp.dir, 'replace.json');
    await writeFile(replace, JSON.stringify({ mode: 'replace', rules: [{ name: 'anything-goes', decision: 'allow' }] }));
    const everything = await run(['validate', p, '--agent', 'a', '--tool', 'Bash', '--input', '{"command":"rm -rf /"}', '--policy', replace]);
    assert.equal(everything.code, 0, everything.stdout);

    const broken = join(tmp.dir, 'broken.yaml');
    await writeFile(broken, 'rules:\n  - name: bad\n    decision: deny\n    match: { command: "(" }\n');
    const refused = await run(['validate', p, '--agent', 'a', '--tool', 'Bash', '--input', '{"command":"ls"}', '--policy', broken]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /bad.*regular expression/);
  });

  it('with --redis and no --policy, the policy comes from the project config the operator wrote', async () => {
    const p = project();
    const config = { generation: 3, policy: { version: 'g3', rules: [{ name: 'no-make-deploy', priority: 10, decision: 'deny', tools: ['Bash'], match: { command: '^make deploy$' } }] } };
    await redis.cli(['SET', `lhb:{default/${p}}:config`, JSON.stringify(config)]);
    const r = await run(['validate', p, '--agent', 'a', '--tool', 'Bash', '--input', '{"command":"make deploy"}', '--redis', redis.url, '--store', redis.url]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal((JSON.parse(r.stdout) as { rule: string }).rule, 'no-make-deploy');
    // A file given on the command line wins over the config.
    const file = join(tmp.dir, 'deploy-ok.yaml');
    await writeFile(file, 'rules:\n  - { name: deploy-ok, priority: 10, decision: allow, tools: [Bash], match: { command: "^make deploy$" } }\n');
    const overridden = await run(['validate', p, '--agent', 'a', '--tool', 'Bash', '--input', '{"command":"make deploy"}', '--redis', redis.url, '--policy', file]);
    assert.equal(overridden.code, 0, overridden.stdout + overridden.stderr);
  });

  it('an escalated request waits for `decide` from another process; decide refuses unknown and decided ids', async () => {
    const p = project();
    const waiting = cli(['validate', p, '--agent', 'coder', '--tool', 'Bash', '--input', '{"command":"npm install left-pad"}', '--store', redis.url, '--redis', redis.url, '--deadline', '20'], 30_000);
    try {
      const id = { namespace: 'default', name: p };
      let requestId: string | undefined;
      const until = Date.now() + 15_000;
      while (requestId === undefined) {
        if (Date.now() > until) throw new Error('validate never recorded its request');
        const requested = (await store.read(id)).find((e) => e.type === 'ValidationRequested');
        if (requested?.type === 'ValidationRequested') requestId = requested.data.requestId;
        else await new Promise((r) => setTimeout(r, 50));
      }
      const unknown = await run(['decide', p, 'no-such-request', 'allow', '--store', redis.url]);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no validation request/);

      const decided = await run(['decide', p, requestId, 'allow', '--reason', 'pinned version, reviewed', '--store', redis.url, '--actor', 'alice']);
      assert.equal(decided.code, 0, decided.stderr);
      const result = await waiting.done;
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const answer = JSON.parse(result.stdout) as { decision: string; tier: string; reason: string; requestId: string };
      assert.deepEqual([answer.decision, answer.tier, answer.requestId], ['allow', 'expert', requestId]);
      assert.match(answer.reason, /pinned version, reviewed.*alice/);

      const again = await run(['decide', p, requestId, 'deny', '--store', redis.url]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already decided: allow by alice/);

      // The expert's answer was shared through Redis: the next process gets it from L2 at once.
      const cached = await run(['validate', p, '--agent', 'coder', '--tool', 'Bash', '--input', '{"command":"npm install left-pad"}', '--store', redis.url, '--redis', redis.url]);
      assert.equal(cached.code, 0);
      assert.equal((JSON.parse(cached.stdout) as { tier: string }).tier, 'cache-l2');
    } finally {
      waiting.kill();
    }
  });

  it('at the deadline the default decision (deny) applies and late answers are refused', async () => {
    const p = project();
    const started = Date.now();
    const r = await run(['validate', p, '--agent', 'coder', '--tool', 'Bash', '--input', '{"command":"npm install left-pad"}', '--store', redis.url, '--deadline', '0.5']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const answer = JSON.parse(r.stdout) as { tier: string; requestId: string };
    assert.equal(answer.tier, 'deadline');
    assert.ok(Date.now() - started >= 500);
    const late = await run(['decide', p, answer.requestId, 'allow', '--store', redis.url]);
    assert.equal(late.code, 1);
    assert.match(late.stderr, /already decided: deny by deadline/);
  });
});
