import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BoundHistogram } from './boundHistogram.js';

/**
 * The process-wide registry every component registers into, so one `/metrics` endpoint shows the
 * whole process. Default metrics keep their stock names (`process_*`, `nodejs_*`) so the usual
 * Node.js dashboards find them; ours carry the `lighthouse_bridge_` prefix.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

/**
 * The names alert rules and dashboards select on. The exporters below and the rules the operator
 * ships (operator/src/monitoring.ts) both take them from here, so a rename changes both sides.
 */
export const METRIC = {
  fuseOp: 'lighthouse_bridge_fuse_op_duration_seconds',
  storeAppend: 'lighthouse_bridge_store_append_duration_seconds',
  storeRead: 'lighthouse_bridge_store_read_duration_seconds',
  validation: 'lighthouse_bridge_validation_duration_seconds',
  csiRpc: 'lighthouse_bridge_csi_rpc_duration_seconds',
  escalations: 'lighthouse_bridge_escalations_total',
  breakerState: 'lighthouse_bridge_breaker_state',
  volumeHealth: 'lighthouse_bridge_volume_health',
  /** The operator's reconciles by result: ok | retry (a sub-resource failed, requeued) | error. */
  reconcile: 'lighthouse_bridge_operator_reconcile_duration_seconds',
} as const;

/**
 * Each BridgeProject's SLO as series the operator sets at reconcile and removes when the project
 * goes, labelled like the node plugin's per-project series: the fleet rules join on
 * `(namespace, project)`, so one rule fires once per project, with that project's threshold.
 */
export const SLO_METRIC = {
  validationP99: 'lighthouse_bridge_project_slo_validation_p99_seconds',
  fuseP99: 'lighthouse_bridge_project_slo_fuse_p99_seconds',
  storeAppendP99: 'lighthouse_bridge_project_slo_store_append_p99_seconds',
  errorRatio: 'lighthouse_bridge_project_slo_error_ratio',
} as const;

/**
 * The labels that name a project on every per-project series. Bounded by the projects a process
 * serves (never per pod or per volume), so they do not churn.
 */
export const PROJECT_LABELS = ['namespace', 'project'] as const;
export function projectLabels(project: { namespace: string; name: string }): { namespace: string; project: string } {
  return { namespace: project.namespace, project: project.name };
}

/**
 * The `condition` label of `volume_health`: any state that is not a healthy, answering mount
 * (dead, hung or gone), as CSI's VolumeCondition `abnormal` reports it to kubelet.
 */
export const VOLUME_CONDITION = { abnormal: 'abnormal' } as const;

/** `outcome` of a store call: failed calls are timed too, and kept apart so a fast error is not good latency. */
export const STORE_OUTCOME = { ok: 'ok', error: 'error' } as const;
export type StoreOutcome = (typeof STORE_OUTCOME)[keyof typeof STORE_OUTCOME];

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const buildInfo = new Gauge({
  name: 'lighthouse_bridge_build_info',
  help: 'Always 1; the labels say which release and Node.js runtime this process runs',
  labelNames: ['version', 'node'] as const,
  registers: [registry],
});
buildInfo.set({ version: VERSION, node: process.version }, 1);

/**
 * Seconds. The speed layer's budget is well under a millisecond and FUSE ops sit around 100 µs, so
 * the low end resolves 50-100 µs; the top covers slow store appends and escalation deadlines.
 */
export const LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/**
 * Live mounts a restarted server took over from the keeper (ADR 0083), and requests the kernel
 * queued again for it because the dead server had read them without answering (FUSE_NOTIFY_RESEND).
 */
export const fuseTakeovers = new Counter({
  name: 'lighthouse_bridge_fuse_takeovers_total',
  help: 'Live FUSE mounts taken over from the keeper after a restart of their server, by project',
  labelNames: PROJECT_LABELS,
  registers: [registry],
});

export const fuseResentRequests = new Counter({
  name: 'lighthouse_bridge_fuse_resent_requests_total',
  help: 'FUSE requests the kernel sent again after a takeover (the dead server had read them without answering), by project',
  labelNames: PROJECT_LABELS,
  registers: [registry],
});

/** Observed once per FUSE request: see BoundHistogram. */
export const fuseOpDuration = new BoundHistogram(METRIC.fuseOp, 'Time to answer one FUSE operation, by project', ['op', ...PROJECT_LABELS] as const, LATENCY_BUCKETS, [registry]);

export const storeAppendDuration = new Histogram({
  name: METRIC.storeAppend,
  help: 'Time until appended events (or a blob) are durable, by project and outcome (ok|error)',
  labelNames: ['backend', 'outcome', ...PROJECT_LABELS] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const storeReadDuration = new Histogram({
  name: METRIC.storeRead,
  help: 'Time to read events or blobs from the store, by outcome (ok|error)',
  labelNames: ['backend', 'outcome'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const validationDuration = new Histogram({
  name: METRIC.validation,
  help: 'Time to answer one validation request, by project and the tier that answered',
  labelNames: ['tier', 'decision', ...PROJECT_LABELS] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const csiRpcDuration = new Histogram({
  name: METRIC.csiRpc,
  help: 'Time to answer one CSI gRPC call',
  labelNames: ['method', 'code'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const cacheRequests = new Counter({
  name: 'lighthouse_bridge_cache_requests_total',
  help: 'Cache lookups by tier and result (hit|miss)',
  labelNames: ['tier', 'result'] as const,
  registers: [registry],
});

export const escalations = new Counter({
  name: METRIC.escalations,
  help: 'Validation requests sent to the expert, by project and outcome (allow|deny|deadline|unavailable)',
  labelNames: ['outcome', ...PROJECT_LABELS] as const,
  registers: [registry],
});

export const breakerTransitions = new Counter({
  name: 'lighthouse_bridge_breaker_transitions_total',
  help: 'Circuit breaker state changes, by breaker and new state',
  labelNames: ['breaker', 'to'] as const,
  registers: [registry],
});

export const eventsAppended = new Counter({
  name: 'lighthouse_bridge_events_appended_total',
  help: 'Events appended to the store',
  labelNames: ['backend'] as const,
  registers: [registry],
});

/** Each time a store finds a project's log shorter than it had seen it: acknowledged events lost. */
export const logRegressions = new Counter({
  name: 'lighthouse_bridge_store_log_regressions_total',
  help: "Times a project's log was found to have gone backwards (acknowledged events lost in the backend)",
  labelNames: ['backend'] as const,
  registers: [registry],
});

/** 0 closed, 1 half-open, 2 open: ordered by severity so `max()` in an alert finds the worst. */
export const breakerState = new Gauge({
  name: METRIC.breakerState,
  help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open',
  labelNames: ['breaker'] as const,
  registers: [registry],
});

export const cacheBytes = new Gauge({
  name: 'lighthouse_bridge_cache_bytes',
  help: 'Bytes held by a cache tier',
  labelNames: ['tier'] as const,
  registers: [registry],
});

export const mounts = new Gauge({
  name: 'lighthouse_bridge_mounts',
  help: 'FUSE mounts served by this process',
  registers: [registry],
});

export const volumeHealth = new Gauge({
  name: METRIC.volumeHealth,
  help: '1 when the volume is in the named condition, else 0; one series per published volume, removed on unpublish',
  labelNames: ['volume', 'condition', ...PROJECT_LABELS] as const,
  registers: [registry],
});

/** Seconds elapsed since `start` (a `performance.now()` reading), for `histogram.observe`. */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}
