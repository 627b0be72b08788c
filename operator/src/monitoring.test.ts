import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promtool, promtoolSkip } from '@lighthouse-bridge/test/promtool';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { fileURLToPath } from 'node:url';
import { SLO_METRIC } from '@lighthouse-bridge/core/observability';
import { allExpressions, fleetDashboard, fleetRuleGroups, RUNBOOK_BASE } from './monitoring.js';
import { MONITORING_FILES, monitoringFiles } from './monitoringFiles.js';

/**
 * A parser for the PromQL subset the shipped expressions use (functions, aggregations with `by`,
 * selectors with matchers, range vectors, comparison and arithmetic with `on(...)` matching). It needs no Go tools, so
 * it checks the expressions on any machine; promtool (below, when built) is the authority.
 */
const FUNCTIONS = new Set(['histogram_quantile', 'rate', 'clamp_min']);
const AGGREGATIONS = new Set(['sum', 'max', 'min', 'avg']);

function parsePromQL(text: string): void {
  const tokens = text.match(/\s+|[A-Za-z_:][A-Za-z0-9_:]*|\d+(?:\.\d+)?(?:e-?\d+)?|!=|=~|!~|>=|<=|==|[(){}[\],=><+\-*/]|"(?:[^"\\]|\\.)*"|\S/g) ?? [];
  const t = tokens.filter((x) => !/^\s+$/.test(x));
  let i = 0;
  const peek = () => t[i];
  const next = () => t[i++];
  const expect = (want: string) => {
    const got = next();
    if (got !== want) throw new Error(`expected "${want}" at token ${i} but found "${got ?? 'end'}" in: ${text}`);
  };
  const isIdent = (x: string | undefined) => x !== undefined && /^[A-Za-z_:][A-Za-z0-9_:]*$/.test(x);
  const isNumber = (x: string | undefined) => x !== undefined && /^\d/.test(x);

  const labels = () => {
    expect('(');
    for (;;) {
      if (!isIdent(next())) throw new Error(`label name expected in: ${text}`);
      if (peek() === ',') next();
      else break;
    }
    expect(')');
  };
  const selector = () => {
    if (peek() === '{') {
      next();
      while (peek() !== '}') {
        if (!isIdent(next())) throw new Error(`label name expected in matcher of: ${text}`);
        if (!['=', '!=', '=~', '!~'].includes(next() ?? '')) throw new Error(`matcher operator expected in: ${text}`);
        if (!/^"/.test(next() ?? '')) throw new Error(`quoted label value expected in: ${text}`);
        if (peek() === ',') next();
      }
      expect('}');
    }
    if (peek() === '[') {
      next();
      if (!isNumber(next()) || !/^[smhdw]$/.test(next() ?? '')) throw new Error(`range like [5m] expected in: ${text}`);
      expect(']');
    }
  };
  const primary = (): void => {
    const tok = next();
    if (tok === '(') {
      expr();
      expect(')');
    } else if (isNumber(tok)) {
      return;
    } else if (tok !== undefined && AGGREGATIONS.has(tok)) {
      if (peek() === 'by') {
        next();
        labels();
      }
      expect('(');
      expr();
      expect(')');
    } else if (tok !== undefined && FUNCTIONS.has(tok)) {
      expect('(');
      expr();
      while (peek() === ',') {
        next();
        expr();
      }
      expect(')');
    } else if (isIdent(tok) && /^lighthouse_bridge_[a-z0-9_]+$/.test(tok ?? '')) {
      selector();
    } else {
      throw new Error(`unexpected "${tok ?? 'end'}" in: ${text}`);
    }
  };
  const expr = (): void => {
    primary();
    while (['>', '<', '>=', '<=', '==', '!=', '+', '-', '*', '/'].includes(peek() ?? '')) {
      next();
      if (peek() === 'on' || peek() === 'ignoring') {
        next();
        labels();
        if (peek() === 'group_left' || peek() === 'group_right') {
          next();
          if (peek() === '(') labels();
        }
      }
      primary();
    }
  };
  expr();
  if (i !== t.length) throw new Error(`trailing "${t.slice(i).join(' ')}" in: ${text}`);
}

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const rules = () => fleetRuleGroups().flatMap((g) => g.rules);

describe('shipped PromQL', () => {
  it('the checker refuses broken expressions', () => {
    for (const bad of ['sum(rate(lighthouse_bridge_x_bucket[5m])', 'rate(lighthouse_bridge_x[5])', 'lighthouse_bridge_x{a="b"', 'sum by le (lighthouse_bridge_x)', 'histogram_quantile(0.99 sum(x))', 'up > 1', 'lighthouse_bridge_x > on namespace lighthouse_bridge_y']) {
      assert.throws(() => parsePromQL(bad), Error, bad);
    }
  });

  it('every alert and dashboard expression parses; per-project alerts join the SLO series on (namespace, project)', () => {
    for (const expr of allExpressions()) parsePromQL(expr);
    const byName = new Map(rules().map((r) => [r.alert, r]));
    assert.equal(byName.size, rules().length, 'alert names are unique');
    for (const [alert, slo] of [
      ['LighthouseBridgeValidationLatencyHigh', SLO_METRIC.validationP99],
      ['LighthouseBridgeFuseLatencyHigh', SLO_METRIC.fuseP99],
      ['LighthouseBridgeStoreAppendLatencyHigh', SLO_METRIC.storeAppendP99],
      ['LighthouseBridgeStoreErrors', SLO_METRIC.errorRatio],
    ] as const) {
      assert.ok(byName.get(alert)?.expr.endsWith(`> on(namespace, project) max by (namespace, project) (${slo})`), alert);
    }
  });

  it('every alert names a runbook that exists in docs/runbooks', async () => {
    for (const r of rules()) {
      assert.equal(r.annotations.runbook_url, `${RUNBOOK_BASE}/${r.alert}.md`);
      await access(join(REPO, 'docs', 'runbooks', `${r.alert}.md`));
    }
  });

  it('the dashboard is one Grafana model with $namespace and $project variables every per-project panel filters on', () => {
    const model = fleetDashboard() as { uid: string; templating: { list: Array<{ name: string }> }; panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    assert.deepEqual(model.templating.list.map((v) => v.name), ['datasource', 'namespace', 'project']);
    const perProject = model.panels.filter((p) => !p.title.endsWith('(fleet)'));
    assert.ok(perProject.length >= 6);
    for (const panel of perProject) for (const t of panel.targets) assert.match(t.expr, /namespace=~"\$namespace", project=~"\$project"/, panel.title);
  });
});

describe('shipped alert rules, checked and unit-tested by promtool', { skip: promtoolSkip }, () => {
  const FUSE = 'lighthouse_bridge_fuse_op_duration_seconds_bucket';
  const rulesFile = monitoringFiles()[MONITORING_FILES.rules] ?? '';

  it("promtool check rules accepts the chart's rule file", async () => {
    const tmp = await tempDir('lhb-promtool-');
    try {
      await writeFile(join(tmp.dir, 'rules.yaml'), rulesFile);
      const { code, output } = await promtool(['check', 'rules', 'rules.yaml'], tmp.dir);
      assert.equal(code, 0, output);
      assert.match(output, new RegExp(`SUCCESS: ${rules().length} rules found`));
    } finally {
      await tmp.remove();
    }
  });

  it('the FUSE latency alert fires for the project whose SLO the latency exceeds, not for one whose SLO it meets', async () => {
    const tmp = await tempDir('lhb-promtool-');
    try {
      await writeFile(join(tmp.dir, 'rules.yaml'), rulesFile);
      // Both projects see the same latency (half the ops take 1-10 ms: p99 about 9.8 ms); a's SLO is 5 ms, b's 20 ms.
      const latency = (project: string) => [
        { series: `${FUSE}{namespace="team",project="${project}",op="read",le="0.001"}`, values: '0+60x40' },
        { series: `${FUSE}{namespace="team",project="${project}",op="read",le="0.01"}`, values: '0+120x40' },
        { series: `${FUSE}{namespace="team",project="${project}",op="read",le="+Inf"}`, values: '0+120x40' },
      ];
      const tests = {
        rule_files: ['rules.yaml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              ...latency('a'),
              ...latency('b'),
              { series: `${SLO_METRIC.fuseP99}{namespace="team",project="a"}`, values: '0.005x40' },
              { series: `${SLO_METRIC.fuseP99}{namespace="team",project="b"}`, values: '0.02x40' },
            ],
            alert_rule_test: [
              { eval_time: '5m', alertname: 'LighthouseBridgeFuseLatencyHigh', exp_alerts: [] },
              {
                eval_time: '20m',
                alertname: 'LighthouseBridgeFuseLatencyHigh',
                exp_alerts: [
                  {
                    exp_labels: { severity: 'warning', namespace: 'team', project: 'a' },
                    exp_annotations: {
                      summary: 'FUSE operation p99 above the SLO of BridgeProject team/a',
                      description: 'p99 FUSE operation latency of BridgeProject team/a is 9.82ms, above its spec.monitoring.slo.',
                      runbook_url: `${RUNBOOK_BASE}/LighthouseBridgeFuseLatencyHigh.md`,
                    },
                  },
                ],
              },
            ],
          },
        ],
      };
      await writeFile(join(tmp.dir, 'tests.yaml'), JSON.stringify(tests));
      const { code, output } = await promtool(['test', 'rules', 'tests.yaml'], tmp.dir);
      assert.equal(code, 0, output);
    } finally {
      await tmp.remove();
    }
  });
});
