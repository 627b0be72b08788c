import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import winston from 'winston';
import { startRedis } from '@lighthouse-bridge/test/redis';
import { DomainError } from '../../aggregate/commands.js';
import { ProjectWorkspace } from '../../commandHandling/workspace.js';
import type { ProjectId } from '../../events/projectId.js';
import { instrumentStore } from '../../observability/instrumentedStore.js';
import { logRegressions } from '../../observability/metrics.js';
import { ConcurrencyError, LogRegressedError } from '../eventStore.js';
import { parseStoreUrl } from '../open.js';
import { openRedisStore } from './redisStore.js';
import { eventually } from '@lighthouse-bridge/test/eventually';

/** The store's log lines, as the JSON objects it writes. */
function capturedLogger(): { logger: winston.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: winston.createLogger({ format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] }), lines };
}

async function regressionsCounted(): Promise<number> {
  return (await logRegressions.get()).values.reduce((sum, v) => sum + v.value, 0);
}

function project(): ProjectId {
  return { namespace: 'regression-test', name: `p-${randomBytes(5).toString('hex')}` };
}

describe('Redis restarted without persistence (issue 14 item 3)', () => {
  it('notices the log went backwards from the tail, reports it, and refuses writes at once instead of EBUSY', async () => {
    const redis = await startRedis();
    const url = parseStoreUrl(redis.url);
    assert.equal(url.kind, 'redis');
    const { logger, lines } = capturedLogger();
    const store = instrumentStore(await openRedisStore(url, logger));
    const p = project();
    const ws = await ProjectWorkspace.open({ store, project: p, actor: 'writer' });
    try {
      for (let i = 0; i < 20; i++) await ws.writeFile(`f${i}.txt`, Buffer.from(`content ${i}`));
      const head = ws.head;
      assert.ok(head >= 20);
      assert.equal(store.logRegression?.(p), undefined);
      const countedBefore = await regressionsCounted();

      await redis.restart(); // --save '' --appendonly no: it comes back empty
      const regression = await eventually('the tail to notice the log went backwards', () => store.logRegression?.(p), 10_000);
      assert.equal(regression.knownHead, head);
      assert.equal(regression.storeHead, 0);
      assert.equal(await regressionsCounted(), countedBefore + 1);
      const line = lines.find((l) => l['level'] === 'error' && String(l['message']).includes('went backwards'));
      assert.ok(line, `no error line among ${JSON.stringify(lines)}`);
      assert.equal(line['knownHead'], head);
      assert.equal(line['storeHead'], 0);

      // Before: 17 ConcurrencyError retries, then EBUSY, for ever. Now: refused at once, clearly.
      const started = Date.now();
      await assert.rejects(ws.writeFile('after.txt', Buffer.from('x')), (error: unknown) => {
        assert.ok(error instanceof LogRegressedError, String(error));
        assert.ok(!(error instanceof DomainError));
        assert.match(error.message, new RegExp(`went backwards: this process saw head ${head}, Redis now has 0`));
        return true;
      });
      assert.ok(Date.now() - started < 2_000, `refusal took ${Date.now() - started} ms`);
      // No sequence number handed out again, with or without an expected version.
      await assert.rejects(store.append(p, [{ type: 'AgentSessionStarted', actor: 'x', data: { sessionId: 's', agent: 'a' } }]), LogRegressedError);
      assert.equal(await redis.cli(['xlen', `lhb:{${p.namespace}/${p.name}}:log`]), '0\n');
      assert.equal(await regressionsCounted(), countedBefore + 1, 'counted once, not per refusal');
    } finally {
      await ws.close();
      await store.close();
      await redis.stop();
    }
  });

  it('refuses an append whose floor is above the head Redis has, without a tail (and writes nothing)', async () => {
    const redis = await startRedis();
    const url = parseStoreUrl(redis.url);
    assert.equal(url.kind, 'redis');
    const store = await openRedisStore(url, capturedLogger().logger);
    const p = project();
    const event = { type: 'AgentSessionStarted', actor: 'x', data: { sessionId: 's', agent: 'a' } } as const;
    try {
      await store.append(p, [event, event, event]);
      await redis.restart();
      // A writer elsewhere starts the empty log again; this store must not take its numbers for ours.
      await redis.cli(['xadd', `lhb:{${p.namespace}/${p.name}}:log`, '1-0', 'type', 'AgentSessionStarted', 'actor', 'y', 'ms', '0', 'data', '{"sessionId":"t","agent":"b"}']);
      const refusal = await retryWhileReconnecting(() => store.append(p, [event], { expectedVersion: 3 }));
      assert.ok(refusal instanceof LogRegressedError, `expected LogRegressedError, got ${String(refusal)}`);
      assert.ok(!(refusal instanceof ConcurrencyError));
      assert.deepEqual(store.logRegression?.(p) && { ...store.logRegression(p), since: 'x' }, { knownHead: 3, storeHead: 1, since: 'x' });
      // Sticky: the log growing past the old head is another history, not a recovery.
      for (let seq = 2; seq <= 5; seq++) {
        await redis.cli(['xadd', `lhb:{${p.namespace}/${p.name}}:log`, `${seq}-0`, 'type', 'AgentSessionStarted', 'actor', 'y', 'ms', '0', 'data', '{"sessionId":"t","agent":"b"}']);
      }
      await assert.rejects(store.append(p, [event], { expectedVersion: 5 }), LogRegressedError);
      assert.equal(await redis.cli(['xlen', `lhb:{${p.namespace}/${p.name}}:log`]), '5\n');
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});

/** The first append after a restart may meet a connection still coming back; the outcome after that is what counts. */
async function retryWhileReconnecting(append: () => Promise<unknown>): Promise<unknown> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const error = await append().then(
      () => undefined,
      (e: unknown) => e,
    );
    if (error instanceof LogRegressedError || error instanceof ConcurrencyError || error === undefined || Date.now() > deadline) return error;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
