import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SLO } from './bridgeProject.js';
import { allExpressions, dashboard, ruleGroups } from './monitoring.js';

/**
 * promtool is not built here (it would pull most of Prometheus through the Go proxy), so the
 * shipped expressions are checked by a parser for the PromQL subset they use: functions,
 * aggregations with `by`, selectors with matchers, range vectors, comparison and arithmetic.
 * It rejects anything outside that subset, so a typo cannot slip through as "unknown syntax".
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

  it('uses only metric names the code exports', async () => {
    const source = await readFile(fileURLToPath(new URL('../../core/src/observability/metrics.ts', import.meta.url)), 'utf8');
    const exported = new Set([...source.matchAll(/name: '(lighthouse_bridge_[a-z_]+)'/g)].map((m) => m[1]));
    const used = allExpressions({ namespace: 'ns', name: 'p' }, DEFAULT_SLO).flatMap((e) => [...e.matchAll(/lighthouse_bridge_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')));
    for (const name of used) assert.ok(exported.has(name), `${name} is not exported by core/src/observability/metrics.ts`);
  });

  it('the dashboard is a Grafana model with one query per panel', () => {
    const model = dashboard({ namespace: 'ns', name: 'p' }, DEFAULT_SLO) as { uid: string; panels: Array<{ targets: unknown[] }> };
    assert.equal(model.uid, 'lhb-ns-p');
    assert.ok(model.panels.length >= 6);
    for (const panel of model.panels) assert.equal(panel.targets.length, 1);
  });
});
