#!/usr/bin/env node
// Memory of the speed layer behind N mounts (a node plugin holds one validator per mount), beside a
// baseline in the same run: the same N validators judging on the caller's thread. Each phase runs in
// its own child process so RSS figures do not mix. Goal (DESIGN §7): < 8 MB per mount in all.
//   node bench/judge-memory.mjs [N]        (needs `npx tsc -b core` first)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const N = Number(process.argv[2] ?? 100);
const phase = process.argv[3];

if (phase === undefined) {
  const run = (p) => JSON.parse(spawnSync(process.execPath, [fileURLToPath(import.meta.url), String(N), p], { encoding: 'utf8' }).stdout);
  const inline = run('inline');
  const thread = run('thread');
  const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;
  console.log(`${N} validators, each with its own policy, each judging one request`);
  console.log(`baseline (judged on the caller's thread)  RSS ${mb(inline.after)}  grew ${mb(inline.after - inline.before)}`);
  console.log(`judged on the shared judge thread        RSS ${mb(thread.after)}  grew ${mb(thread.after - thread.before)}  (${mb((thread.after - thread.before) / N)} per validator)`);
  console.log(`ratio of growth: ${((thread.after - thread.before) / Math.max(1, inline.after - inline.before)).toFixed(2)}x`);
} else {
  const { createValidator } = await import('@lighthouse-bridge/core/speed-layer');
  const before = process.memoryUsage().rss;
  const validators = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      createValidator({
        project: { namespace: 'bench', name: `m${i}` },
        rateLimit: false,
        judgeThread: phase === 'thread',
        policy: { rules: [{ name: `r${i}`, priority: 500, decision: 'deny', match: { command: `^deploy-${i}$` } }] },
      }),
    ),
  );
  await Promise.all(validators.map((v, i) => v.validate({ agent: 'a', tool: 'Bash', input: { command: `deploy-${i}` } })));
  const after = process.memoryUsage().rss;
  await Promise.all(validators.map((v) => v.close()));
  process.stdout.write(JSON.stringify({ before, after }));
}
