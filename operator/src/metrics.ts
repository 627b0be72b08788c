import { Counter, Gauge, Histogram } from 'prom-client';
import { LATENCY_BUCKETS, registry } from '@lighthouse-bridge/core/observability';

/** The operator's own metrics, in the process-wide registry that `--metrics-port` serves. */
export const reconcileDuration = new Histogram({
  name: 'lighthouse_bridge_operator_reconcile_duration_seconds',
  help: 'Time to reconcile one BridgeProject, by result (ok|retry|error)',
  labelNames: ['result'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const queueDepth = new Gauge({
  name: 'lighthouse_bridge_operator_queue_depth',
  help: 'BridgeProjects waiting to be reconciled',
  registers: [registry],
});

export const isLeader = new Gauge({
  name: 'lighthouse_bridge_operator_leader',
  help: '1 while this replica holds the Lease (or runs without leader election), else 0',
  registers: [registry],
});

export const watchRestarts = new Counter({
  name: 'lighthouse_bridge_operator_watch_restarts_total',
  help: 'Watches of BridgeProjects that ended in an error and were restarted with a relist',
  registers: [registry],
});
