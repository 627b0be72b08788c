import { Counter, Gauge, Histogram } from 'prom-client';
import { LATENCY_BUCKETS, METRIC, PROJECT_LABELS, SLO_METRIC, registry } from '@lighthouse-bridge/core/observability';

/** The operator's own metrics, in the process-wide registry that `--metrics-port` serves. */
export const reconcileDuration = new Histogram({
  name: METRIC.reconcile,
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

const sloGauge = (name: string, help: string) => new Gauge({ name, help, labelNames: PROJECT_LABELS, registers: [registry] });

/**
 * Each BridgeProject's SLO thresholds, the data the chart's fleet rules join on. Set at reconcile,
 * removed when the project goes, so a series exists exactly while its project does.
 */
export const projectSlo = {
  validationP99: sloGauge(SLO_METRIC.validationP99, "The project's p99 validation latency objective, seconds"),
  fuseP99: sloGauge(SLO_METRIC.fuseP99, "The project's p99 FUSE operation latency objective, seconds"),
  storeAppendP99: sloGauge(SLO_METRIC.storeAppendP99, "The project's p99 store append latency objective, seconds"),
  errorRatio: sloGauge(SLO_METRIC.errorRatio, "The project's objective for the failed share of store writes (0-1)"),
};
