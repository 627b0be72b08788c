import { METRIC, SLO_METRIC, STORE_OUTCOME, VOLUME_CONDITION } from '@lighthouse-bridge/core/observability';

/**
 * The fleet's alert rules and Grafana dashboard, shipped once by the chart (rendered into
 * charts/lighthouse-bridge/files by `make chart`). Metric names and label values are the exporters'
 * own constants (core/src/observability/metrics.ts). Per-project rules join the node plugin's
 * per-project series with the SLO series the operator writes for each BridgeProject, so each
 * alert fires once per project, at that project's threshold.
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

/** Where the chart's alerts point their `runbook_url`: docs/runbooks/<Alert>.md of this repository. */
export const RUNBOOK_BASE = 'https://github.com/lighthouse-bridge/lighthouse-bridge/blob/main/docs/runbooks';

const BY_PROJECT = 'namespace, project';
const WHO = '{{ $labels.namespace }}/{{ $labels.project }}';

function p99(metric: string, selector = ''): string {
  return `histogram_quantile(0.99, sum by (${BY_PROJECT}, le) (rate(${metric}_bucket${selector}[5m])))`;
}

/**
 * The project's threshold series. `max by` collapses the copies a former leader may still export
 * next to the current one, so the join stays one-to-one.
 */
function slo(metric: string): string {
  return `on(${BY_PROJECT}) max by (${BY_PROJECT}) (${metric})`;
}

function rule(alert: string, expr: string, forDuration: string, severity: 'warning' | 'critical', summary: string, description: string): AlertRule {
  return { alert, expr, for: forDuration, labels: { severity }, annotations: { summary, description, runbook_url: `${RUNBOOK_BASE}/${alert}.md` } };
}

const latency = (alert: string, metric: string, threshold: string, what: string): AlertRule =>
  rule(
    alert,
    `${p99(metric)} > ${slo(threshold)}`,
    '10m',
    'warning',
    `${what} p99 above the SLO of BridgeProject ${WHO}`,
    `p99 ${what} latency of BridgeProject ${WHO} is {{ $value | humanizeDuration }}, above its spec.monitoring.slo.`,
  );

export function fleetRuleGroups(): RuleGroup[] {
  const failedShare = (metric: string, by: string) =>
    `sum by (${by}) (rate(${metric}_count{outcome="${STORE_OUTCOME.error}"}[5m])) / clamp_min(sum by (${by}) (rate(${metric}_count[5m])), 1e-9)`;
  return [
    {
      name: 'lighthouse-bridge.projects',
      rules: [
        latency('LighthouseBridgeValidationLatencyHigh', METRIC.validation, SLO_METRIC.validationP99, 'validation'),
        latency('LighthouseBridgeFuseLatencyHigh', METRIC.fuseOp, SLO_METRIC.fuseP99, 'FUSE operation'),
        latency('LighthouseBridgeStoreAppendLatencyHigh', METRIC.storeAppend, SLO_METRIC.storeAppendP99, 'store append'),
        rule(
          'LighthouseBridgeStoreErrors',
          `${failedShare(METRIC.storeAppend, BY_PROJECT)} > ${slo(SLO_METRIC.errorRatio)}`,
          '5m',
          'warning',
          `store writes of BridgeProject ${WHO} failing above its SLO`,
          `{{ $value | humanizePercentage }} of event store writes of BridgeProject ${WHO} failed over 5m; its writers get EIO.`,
        ),
        rule(
          'LighthouseBridgeEscalationsTimingOut',
          `sum by (${BY_PROJECT}) (rate(${METRIC.escalations}{outcome="deadline"}[15m])) > 0`,
          '15m',
          'warning',
          `expert escalations of BridgeProject ${WHO} reach their deadline`,
          `Validation escalations of BridgeProject ${WHO} are answered by the policy's default decision.`,
        ),
        rule(
          'LighthouseBridgeDeadMount',
          `max by (${BY_PROJECT}, volume) (${METRIC.volumeHealth}{condition="${VOLUME_CONDITION.abnormal}"}) > 0`,
          '1m',
          'critical',
          `a FUSE mount of BridgeProject ${WHO} is dead`,
          `Volume {{ $labels.volume }} of BridgeProject ${WHO} is not answering; the node plugin remounts it within seconds.`,
        ),
      ],
    },
    {
      // CSI calls and the store's breakers serve every project on a node: fleet-wide by nature.
      name: 'lighthouse-bridge.fleet',
      rules: [
        rule(
          'LighthouseBridgeCsiErrorRateHigh',
          `sum(rate(${METRIC.csiRpc}_count{code!="OK"}[5m])) / clamp_min(sum(rate(${METRIC.csiRpc}_count[5m])), 1e-9) > 0.05`,
          '10m',
          'warning',
          'more than 5% of CSI calls fail',
          '{{ $value | humanizePercentage }} of CSI calls to the node plugins failed over 5m.',
        ),
        rule(
          'LighthouseBridgeReconcileFailing',
          `sum(rate(${METRIC.reconcile}_count{result=~"retry|error"}[5m])) > 0`,
          '10m',
          'warning',
          'BridgeProject reconciles keep failing',
          'The operator has been failing or requeueing reconciles for 10 minutes: projects may show stale status, and new projects, access changes or ACL users wait.',
        ),
        rule(
          'LighthouseBridgeStoreUnavailable',
          `max by (breaker) (${METRIC.breakerState}) >= 2`,
          '2m',
          'critical',
          'a store circuit breaker is open',
          'Breaker {{ $labels.breaker }} is open: the event store is failing, and writes return EIO until it recovers.',
        ),
      ],
    },
  ];
}

const PROJECT_SELECTOR = '{namespace=~"$namespace", project=~"$project"}';

/** A Grafana dashboard (JSON model) with a panel per alert, filtered by `$namespace` and `$project`. */
export function fleetDashboard(): Record<string, unknown> {
  type Target = { expr: string; legendFormat: string };
  const panel = (id: number, title: string, unit: string, targets: Target[]) => ({
    id,
    type: 'timeseries',
    title,
    gridPos: { x: ((id - 1) % 2) * 12, y: Math.floor((id - 1) / 2) * 8, w: 12, h: 8 },
    datasource: { type: 'prometheus', uid: '${datasource}' },
    fieldConfig: { defaults: { unit }, overrides: [] },
    targets: targets.map((t, i) => ({ refId: String.fromCharCode(65 + i), ...t })),
  });
  const legend = '{{namespace}}/{{project}}';
  const latencyPanel = (id: number, title: string, metric: string, threshold: string) =>
    panel(id, title, 's', [
      { expr: p99(metric, PROJECT_SELECTOR), legendFormat: legend },
      { expr: `max by (${BY_PROJECT}) (${threshold}${PROJECT_SELECTOR})`, legendFormat: `SLO ${legend}` },
    ]);
  const variable = (name: string, label: string, query: string) => ({
    name,
    label,
    type: 'query',
    datasource: { type: 'prometheus', uid: '${datasource}' },
    query: { query, refId: name },
    includeAll: true,
    multi: true,
    allValue: '.*',
    refresh: 2,
  });
  return {
    title: 'Lighthouse Bridge',
    uid: 'lighthouse-bridge',
    schemaVersion: 39,
    tags: ['lighthouse-bridge'],
    time: { from: 'now-6h', to: 'now' },
    templating: {
      list: [
        { name: 'datasource', type: 'datasource', query: 'prometheus' },
        variable('namespace', 'Namespace', `label_values(${SLO_METRIC.fuseP99}, namespace)`),
        variable('project', 'BridgeProject', `label_values(${SLO_METRIC.fuseP99}{namespace=~"$namespace"}, project)`),
      ],
    },
    panels: [
      latencyPanel(1, 'Validation p99', METRIC.validation, SLO_METRIC.validationP99),
      latencyPanel(2, 'FUSE op p99', METRIC.fuseOp, SLO_METRIC.fuseP99),
      latencyPanel(3, 'Store append p99', METRIC.storeAppend, SLO_METRIC.storeAppendP99),
      panel(4, 'Failed store writes', 'percentunit', [
        {
          expr: `sum by (${BY_PROJECT}) (rate(${METRIC.storeAppend}_count{namespace=~"$namespace", project=~"$project", outcome="${STORE_OUTCOME.error}"}[5m])) / clamp_min(sum by (${BY_PROJECT}) (rate(${METRIC.storeAppend}_count${PROJECT_SELECTOR}[5m])), 1e-9)`,
          legendFormat: legend,
        },
      ]),
      panel(5, 'Dead mounts', 'none', [
        { expr: `sum by (${BY_PROJECT}) (${METRIC.volumeHealth}{namespace=~"$namespace", project=~"$project", condition="${VOLUME_CONDITION.abnormal}"})`, legendFormat: legend },
      ]),
      panel(6, 'Escalations reaching their deadline / s', 'reqps', [
        { expr: `sum by (${BY_PROJECT}) (rate(${METRIC.escalations}{namespace=~"$namespace", project=~"$project", outcome="deadline"}[5m]))`, legendFormat: legend },
      ]),
      panel(7, 'CSI errors / s (fleet)', 'reqps', [{ expr: `sum by (method) (rate(${METRIC.csiRpc}_count{code!="OK"}[5m]))`, legendFormat: '{{method}}' }]),
      panel(8, 'Breaker state (fleet)', 'none', [{ expr: `max by (breaker) (${METRIC.breakerState})`, legendFormat: '{{breaker}}' }]),
    ],
  };
}

/** Every PromQL expression the chart ships (alerts and dashboard panels), for checking. */
export function allExpressions(): string[] {
  const exprs = fleetRuleGroups().flatMap((g) => g.rules.map((r) => r.expr));
  const panels = fleetDashboard().panels as Array<{ targets: Array<{ expr: string }> }>;
  return [...exprs, ...panels.flatMap((p) => p.targets.map((t) => t.expr))];
}
