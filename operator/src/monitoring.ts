import type { ProjectId } from '@lighthouse-bridge/core';
import { METRIC, STORE_OUTCOME, VOLUME_CONDITION } from '@lighthouse-bridge/core/observability';
import type { Slo } from './bridgeProject.js';

/**
 * Alert rules and a Grafana dashboard for one project, from its SLOs. Metric names and label values
 * are the exporters' own constants (core/src/observability/metrics.ts). The metrics carry no project label (one node
 * plugin serves many projects), so the expressions are fleet-wide and the project's thresholds
 * decide when they fire; the alerts are labelled with the project so routing can tell them apart.
 */
export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  rules: AlertRule[];
}

function p99(metric: string): string {
  return `histogram_quantile(0.99, sum by (le) (rate(${metric}_bucket[5m])))`;
}

/** Seconds as PromQL prints them, without float noise (2 ms → 0.002). */
function seconds(ms: number): string {
  return String(Number((ms / 1000).toPrecision(6)));
}

export function ruleGroups(project: ProjectId, slo: Slo): RuleGroup[] {
  const labels = { severity: 'warning', bridge_project: `${project.namespace}/${project.name}` };
  const critical = { ...labels, severity: 'critical' };
  const who = `${project.namespace}/${project.name}`;
  const latency = (alert: string, metric: string, ms: number, what: string): AlertRule => ({
    alert,
    expr: `${p99(metric)} > ${seconds(ms)}`,
    for: '10m',
    labels,
    annotations: {
      summary: `${what} p99 above ${ms} ms`,
      description: `p99 ${what} latency is {{ $value | humanizeDuration }}, above the ${ms} ms SLO of BridgeProject ${who}.`,
    },
  });
  const errorRatio = slo.errorRatePercent / 100;
  return [
    {
      name: `lighthouse-bridge.${project.namespace}.${project.name}`,
      rules: [
        latency('LighthouseBridgeValidationLatencyHigh', METRIC.validation, slo.validationP99Ms, 'validation'),
        latency('LighthouseBridgeFuseLatencyHigh', METRIC.fuseOp, slo.fuseP99Ms, 'FUSE operation'),
        latency('LighthouseBridgeStoreAppendLatencyHigh', METRIC.storeAppend, slo.storeAppendP99Ms, 'store append'),
        {
          alert: 'LighthouseBridgeCsiErrorRateHigh',
          expr: `sum(rate(${METRIC.csiRpc}_count{code!="OK"}[5m])) / clamp_min(sum(rate(${METRIC.csiRpc}_count[5m])), 1e-9) > ${errorRatio}`,
          for: '10m',
          labels,
          annotations: {
            summary: `CSI error rate above ${slo.errorRatePercent}%`,
            description: `{{ $value | humanizePercentage }} of CSI calls failed over 5m (SLO ${slo.errorRatePercent}%, BridgeProject ${who}).`,
          },
        },
        {
          alert: 'LighthouseBridgeStoreErrors',
          expr: `sum(rate(${METRIC.storeAppend}_count{outcome="${STORE_OUTCOME.error}"}[5m])) / clamp_min(sum(rate(${METRIC.storeAppend}_count[5m])), 1e-9) > ${errorRatio}`,
          for: '5m',
          labels,
          annotations: {
            summary: `store writes failing above ${slo.errorRatePercent}%`,
            description: `{{ $value | humanizePercentage }} of event store writes failed over 5m; writes to BridgeProject ${who} return EIO.`,
          },
        },
        {
          alert: 'LighthouseBridgeStoreUnavailable',
          expr: `max(${METRIC.breakerState}) >= 2`,
          for: '2m',
          labels: critical,
          annotations: {
            summary: 'a store circuit breaker is open',
            description: `The event store is failing; writes to BridgeProject ${who} return EIO until it recovers.`,
          },
        },
        {
          alert: 'LighthouseBridgeEscalationsTimingOut',
          expr: `sum(rate(${METRIC.escalations}{outcome="deadline"}[15m])) > 0`,
          for: '15m',
          labels,
          annotations: {
            summary: 'expert escalations reach their deadline',
            description: `Validation escalations are answered by the default decision (BridgeProject ${who}).`,
          },
        },
        {
          alert: 'LighthouseBridgeDeadMount',
          expr: `max by (volume) (${METRIC.volumeHealth}{condition="${VOLUME_CONDITION.abnormal}"}) > 0`,
          for: '1m',
          labels: critical,
          annotations: {
            summary: 'a FUSE mount is dead',
            description: 'Volume {{ $labels.volume }} reports a dead mount; the node plugin should remount it within seconds.',
          },
        },
      ],
    },
  ];
}

/** A Grafana dashboard (JSON model) with the panels matching the alerts. */
export function dashboard(project: ProjectId, slo: Slo): Record<string, unknown> {
  const panel = (id: number, title: string, expr: string, unit: string, thresholdMs?: number) => ({
    id,
    type: 'timeseries',
    title,
    gridPos: { x: ((id - 1) % 2) * 12, y: Math.floor((id - 1) / 2) * 8, w: 12, h: 8 },
    datasource: { type: 'prometheus', uid: '${datasource}' },
    fieldConfig: {
      defaults: {
        unit,
        ...(thresholdMs === undefined
          ? {}
          : { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: thresholdMs / 1000 }] } }),
      },
      overrides: [],
    },
    targets: [{ refId: 'A', expr }],
  });
  return {
    title: `Lighthouse Bridge ${project.namespace}/${project.name}`,
    uid: `lhb-${project.namespace}-${project.name}`.slice(0, 40),
    schemaVersion: 39,
    tags: ['lighthouse-bridge'],
    time: { from: 'now-6h', to: 'now' },
    templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus' }] },
    panels: [
      panel(1, 'Validation p99', p99(METRIC.validation), 's', slo.validationP99Ms),
      panel(2, 'FUSE op p99', p99(METRIC.fuseOp), 's', slo.fuseP99Ms),
      panel(3, 'Store append p99', p99(METRIC.storeAppend), 's', slo.storeAppendP99Ms),
      panel(4, 'CSI errors / s', `sum by (method) (rate(${METRIC.csiRpc}_count{code!="OK"}[5m]))`, 'reqps'),
      panel(5, 'Breaker state', `max by (breaker) (${METRIC.breakerState})`, 'none'),
      panel(6, 'Dead mounts', `sum(${METRIC.volumeHealth}{condition="${VOLUME_CONDITION.abnormal}"})`, 'none'),
    ],
  };
}

/** Every PromQL expression the operator ships for a project (alerts and dashboard), for checking. */
export function allExpressions(project: ProjectId, slo: Slo): string[] {
  const exprs = ruleGroups(project, slo).flatMap((g) => g.rules.map((r) => r.expr));
  const panels = dashboard(project, slo).panels as Array<{ targets: Array<{ expr: string }> }>;
  return [...exprs, ...panels.flatMap((p) => p.targets.map((t) => t.expr))];
}
