import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveMetrics } from './httpServer.js';
import { validationDuration, breakerState } from './metrics.js';

test('/metrics shows shared histograms with sub-millisecond buckets, stock process metrics and build info; /healthz follows the health check', async () => {
  let healthy = true;
  const server = await serveMetrics({ port: 0, health: () => healthy });
  try {
    validationDuration.observe({ tier: 'cache', decision: 'allow' }, 0.00007);
    breakerState.set({ breaker: 'test' }, 2);
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /lighthouse_bridge_validation_duration_seconds_bucket\{le="0\.0001",tier="cache",decision="allow"\} [1-9]/);
    assert.match(text, /lighthouse_bridge_breaker_state\{breaker="test"\} 2/);
    assert.match(text, /^process_cpu_user_seconds_total /m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    assert.doesNotMatch(text, /^lighthouse_bridge_(process|nodejs)_/m);
    assert.match(text, new RegExp(`^lighthouse_bridge_build_info\\{version="\\d+\\.\\d+\\.\\d+",node="${process.version}"\\} 1$`, 'm'));

    assert.equal((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status, 200);
    healthy = false;
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status, 503);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/nope`)).status, 404);
  } finally {
    await server.close();
  }
});
