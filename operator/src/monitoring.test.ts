import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promtool, promtoolSkip } from '@lighthouse-bridge/test/promtool';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { DEFAULT_SLO } from './bridgeProject.js';
import { allExpressions, dashboard, ruleGroups } from './monitoring.js';

/**
 * A parser for the PromQL subset the shipped expressions use (functions, aggregations with `by`,
 * selectors with matchers, range vectors, comparison and arithmetic). It needs no Go tools, so
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
    } else if (isIdent(tok) && /^lighthouse_bridge_[a-z_]+$/.test(tok ?? '')) {
      selector();
    } else {
      throw new Error(`unexpected "${tok ?? 'end'}" in: ${text}`);
    }
  };
  const expr = (): void => {
    primary();
    while (['>', '<', '>=', '<=', '==', '!=', '+', '-', '*', '/'].includes(peek() ?? '')) {
      next();
      primary();
    }
  };
  expr();
  if (i !== t.length) throw new Error(`trailing "${t.slice(i).join(' ')}" in: ${text}`);
}

describe('shipped PromQL', () => {
  it('the checker refuses broken expressions', () => {
    for (const bad of ['sum(rate(lighthouse_bridge_x_bucket[5m])', 'rate(lighthouse_bridge_x[5])', 'lighthouse_bridge_x{a="b"', 'sum by le (lighthouse_bridge_x)', 'histogram_quantile(0.99 sum(x))', 'up > 1']) {
      assert.throws(() => parsePromQL(bad), Error, bad);
    }
  });

  it('every alert and dashboard expression parses, with the SLO thresholds in seconds', () => {
    const project = { namespace: 'ns', name: 'p' };
    const slo = { ...DEFAULT_SLO, validationP99Ms: 0.5, errorRatePercent: 2.5 };
    for (const expr of allExpressions(project, slo)) parsePromQL(expr);
    const rules = ruleGroups(project, slo)[0]?.rules ?? [];
    assert.equal(rules.find((r) => r.alert === 'LighthouseBridgeValidationLatencyHigh')?.expr.endsWith('> 0.0005'), true);
    assert.equal(rules.find((r) => r.alert === 'LighthouseBridgeCsiErrorRateHigh')?.expr.endsWith('> 0.025'), true);
    assert.equal(new Set(rules.map((r) => r.alert)).size, rules.length, 'alert names are unique');
    for (const r of rules) assert.equal(r.labels.bridge_project, 'ns/p');
  });

  it('the dashboard is a Grafana model with one query per panel', () => {
    const model = dashboard({ namespace: 'ns', name: 'p' }, DEFAULT_SLO) as { uid: string; panels: Array<{ targets: unknown[] }> };
    assert.equal(model.uid, 'lhb-ns-p');
    assert.ok(model.panels.length >= 6);
    for (const panel of model.panels) assert.equal(panel.targets.length, 1);
  });
});

describe('shipped alert rules, checked and unit-tested by promtool', { skip: promtoolSkip }, () => {
  const project = { namespace: 'ns', name: 'p' };
  const groups = ruleGroups(project, DEFAULT_SLO);
  const FUSE = 'lighthouse_bridge_fuse_op_duration_seconds_bucket';

  it('promtool check rules accepts every rule', async () => {
    const tmp = await tempDir('lhb-promtool-');
    try {
      await writeFile(join(tmp.dir, 'rules.yaml'), JSON.stringify({ groups }));
      const { code, output } = await promtool(['check', 'rules', 'rules.yaml'], tmp.dir);
      assert.equal(code, 0, output);
      assert.match(output, new RegExp(`SUCCESS: ${groups[0]?.rules.length} rules found`));
    } finally {
      await tmp.remove();
    }
  });

  it('the FUSE latency alert fires above the SLO and stays quiet below it', async () => {
    const tmp = await tempDir('lhb-promtool-');
    try {
      await writeFile(join(tmp.dir, 'rules.yaml'), JSON.stringify({ groups }));
      const labels = { severity: 'warning', bridge_project: 'ns/p' };
      const tests = {
        rule_files: ['rules.yaml'],
        evaluation_interval: '1m',
        tests: [
          {
            // Half the ops take 1-10 ms: p99 is about 9.8 ms, above the 5 ms SLO.
            interval: '1m',
            input_series: [
              { series: `${FUSE}{op="read",le="0.001"}`, values: '0+60x40' },
              { series: `${FUSE}{op="read",le="0.01"}`, values: '0+120x40' },
              { series: `${FUSE}{op="read",le="+Inf"}`, values: '0+120x40' },
            ],
            alert_rule_test: [
              { eval_time: '5m', alertname: 'LighthouseBridgeFuseLatencyHigh', exp_alerts: [] },
              {
                eval_time: '20m',
                alertname: 'LighthouseBridgeFuseLatencyHigh',
                exp_alerts: [
                  {
                    exp_labels: labels,
                    exp_annotations: {
                      summary: 'FUSE operation p99 above 5 ms',
                      description: 'p99 FUSE operation latency is 9.82ms, above the 5 ms SLO of BridgeProject ns/p.',
                    },
                  },
                ],
              },
            ],
          },
          {
            // Every op under 1 ms: no alert however long it lasts.
            interval: '1m',
            input_series: [
              { series: `${FUSE}{op="read",le="0.001"}`, values: '0+120x40' },
              { series: `${FUSE}{op="read",le="0.01"}`, values: '0+120x40' },
              { series: `${FUSE}{op="read",le="+Inf"}`, values: '0+120x40' },
            ],
            alert_rule_test: [{ eval_time: '30m', alertname: 'LighthouseBridgeFuseLatencyHigh', exp_alerts: [] }],
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
