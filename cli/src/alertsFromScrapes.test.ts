import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadCsiPackage } from '@lighthouse-bridge/csi-driver/csi';
import { METRIC, SLO_METRIC } from '@lighthouse-bridge/core/observability';
import { allExpressions, fleetRuleGroups, MONITORING_FILES, resourcePath, type BridgeProject, type BridgeProjectSpec } from '@lighthouse-bridge/operator';
import { ensureNamespace, installBridgeProjectCrd, kubeFor } from '@lighthouse-bridge/operator/testing';
import { csiClients, startPlugin, type CsiClients, type PluginProcess } from '@lighthouse-bridge/test/csiPlugin';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { kubeToolsAvailable, startKube, type KubeEnv } from '@lighthouse-bridge/test/kube';
import { detachAllUnder } from '@lighthouse-bridge/test/mounts';
import { freePort } from '@lighthouse-bridge/test/ports';
import { parseScrape, promtool, promtoolSkip, seriesBetween, type Sample } from '@lighthouse-bridge/test/promtool';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';

/**
 * The shipped alert rules, judged on what the real processes export: a node plugin serving real
 * FUSE mounts over a real Redis, and the operator reconciling a real BridgeProject on a real API
 * server. Each alert's condition is caused for real (a dead mount, a paused Redis, CSI calls that
 * fail, an escalation nobody answers); the scraped /metrics text, repeated over an hour, is what
 * promtool evaluates the rules on. The rules are the chart's own file (what ships), and the
 * project's thresholds are the SLO series the operator exports for it, so each per-project alert
 * is shown firing for team/demo from the join the chart relies on. No series here is written by
 * hand, so a rule that selects a name or label value the code does not export can not pass.
 */
const CSI = loadCsiPackage().grpcObject;
const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const CHART_RULES = fileURLToPath(new URL(`../../charts/lighthouse-bridge/files/${MONITORING_FILES.rules}`, import.meta.url));
const exec = promisify(execFile);
const PROJECT = { namespace: 'team', name: 'demo' };
const SPEC: BridgeProjectSpec = {
  access: { readWrite: ['agents'] },
  policy: {
    defaultDecision: 'deny',
    escalationTimeoutSeconds: 1,
    rules: [
      { name: 'ask-before-deploying', decision: 'escalate', tools: ['Deploy'] },
      { name: 'no-rm', decision: 'deny', tools: ['Bash'], match: { command: 'rm -rf' } },
    ],
  },
  // Loose enough that a loaded test machine stays under them while healthy; a paused Redis is not.
  monitoring: { slo: { validationP99Ms: 250, fuseP99Ms: 250, storeAppendP99Ms: 250, errorRatePercent: 1 } },
};
const MOUNT_RW = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
/** What kubelet passes with podInfoOnMount, for a pod running as team/agents that mounts the volume at /workspace. */
const POD = {
  'csi.storage.k8s.io/pod.namespace': 'team',
  'csi.storage.k8s.io/pod.name': 'agent-0',
  'csi.storage.k8s.io/pod.uid': '6d3c1f0e-0000-4000-8000-000000000001',
  'csi.storage.k8s.io/serviceAccount.name': 'agents',
  workspacePath: '/workspace',
};
/** An hour of minutes: longer than every rule's range and `for`. */
const STEPS = 60;

const skip = promtoolSkip || (kubeToolsAvailable() ? false : 'kube-apiserver/etcd not built: run bash test/setup/tools/kube.sh');

describe('shipped alerts on real scrapes', { skip, timeout: 240_000 }, () => {
  let redis: RedisServer;
  let kube: KubeEnv;
  let dir: { dir: string; remove(): Promise<void> };
  let plugin: PluginProcess;
  let operator: ChildProcess | undefined;
  let csi: CsiClients;
  let pluginMetrics: string;
  let operatorMetrics: string;
  const scrapes: Record<'start' | 'healthy' | 'degraded', Sample[]> = { start: [], healthy: [], degraded: [] };
  let operatorScrape: Sample[] = [];
  let activeMountsSeen = -1;
  const target = (name: string) => join(dir.dir, 'pods', name, 'volume');

  const scrape = async (url: string): Promise<string> => (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
  const stats = (volumeId: string, path: string) => csi.call('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: path });
  const validate = async (mount: string, request: object): Promise<{ decision: string; tier: string }> => {
    const handle = await open(join(mount, '.bridge', 'validate'), 'r+');
    try {
      await handle.write(`${JSON.stringify(request)}\n`);
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
      return JSON.parse(buffer.subarray(0, bytesRead).toString('utf8')) as { decision: string; tier: string };
    } finally {
      await handle.close();
    }
  };
  let round = 0;
  /** What a working project sees: writes, reads, allowed validations, stats of live volumes. */
  const healthyTraffic = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      const file = join(target('a'), 'current', `notes-${++round}.md`);
      await writeFile(file, `round ${round}\n`);
      assert.equal(await readFile(file, 'utf8'), `round ${round}\n`);
      assert.equal((await validate(target('a'), { agent: 'a1', tool: 'Write', input: { file_path: `/workspace/current/x-${round}.md`, content: 'x' } })).decision, 'allow');
      await stats('team/demo', target('a'));
      await stats('team/demo', target('b'));
    }
  };

  before(async () => {
    dir = await tempDir('lhb-alerts-');
    redis = await startRedis();
    kube = await startKube();
    const client = await kubeFor(kube.kubeconfig);
    await installBridgeProjectCrd(client);
    await ensureNamespace(client, PROJECT.namespace);
    const operatorPort = await freePort();
    operator = spawn(process.execPath, [MAIN, 'operator', '--kubeconfig', kube.kubeconfig, '--redis', redis.url, '--metrics-port', String(operatorPort), '--relist-seconds', '1'], {
      stdio: 'ignore',
    });
    operatorMetrics = `http://127.0.0.1:${operatorPort}/metrics`;
    await client.create(resourcePath(PROJECT.namespace), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: PROJECT, spec: SPEC });
    // The operator writes the policy the mounts validate with.
    await eventually('the operator wrote the project config', async () => (await redis.cli(['GET', 'lhb:{team/demo}:config'])).includes('ask-before-deploying'), 60_000, 200);

    plugin = await startPlugin({ socket: join(dir.dir, 'csi.sock'), stateDir: join(dir.dir, 'state'), store: redis.url, args: ['--metrics-port', '0'] });
    csi = csiClients(CSI, plugin.socket);
    // The socket answers before /metrics is up: wait for the line that names its port.
    const port = await eventually('the plugin logs its metrics port', () => /"message":"metrics serving","port":(\d+)/.exec(plugin.output())?.[1], 10_000, 50);
    pluginMetrics = `http://127.0.0.1:${port}/metrics`;
    for (const name of ['a', 'b']) await csi.call('Node', 'NodePublishVolume', { volume_id: 'team/demo', target_path: target(name), volume_capability: MOUNT_RW, volume_context: POD });

    await healthyTraffic(); // warm-up: first mounts, worker threads, connections
    scrapes.start = await scrapeBoth();
    await healthyTraffic();
    scrapes.healthy = await scrapeBoth();
    activeMountsSeen = await eventually('the operator counts both mounts', async () => {
      const bp = await client.get<BridgeProject>(resourcePath(PROJECT.namespace, PROJECT.name));
      return bp.status?.activeMounts === 2 ? 2 : undefined;
    }, 30_000, 200);

    // An escalation nobody answers reaches its deadline; a denial; CSI calls that fail.
    assert.equal((await validate(target('a'), { agent: 'a1', tool: 'Deploy', input: { to: 'prod' } })).tier, 'deadline');
    assert.equal((await validate(target('a'), { agent: 'a1', tool: 'Bash', input: { command: 'rm -rf /' } })).decision, 'deny');
    for (let i = 0; i < 3; i++) await assert.rejects(stats('team/gone', target('a')), { code: 5 });
    // Volume b's FUSE connection aborted, as when its serving side dies; kubelet's stats call sees it.
    const mounts = await readFile('/proc/self/mounts', 'utf8');
    if (!mounts.includes(' /sys/fs/fuse/connections ')) await exec('mount', ['-t', 'fusectl', 'fusectl', '/sys/fs/fuse/connections']);
    await writeFile(`/sys/fs/fuse/connections/${(await stat(target('b'))).dev & 0xff}/abort`, '1');
    await stats('team/demo', target('b'));
    // Redis stops answering (not gone: paused); validations and a write wait on it and fail.
    const pid = /process_id:(\d+)/.exec(await redis.cli(['INFO', 'server']))?.[1];
    assert.ok(pid);
    process.kill(Number(pid), 'SIGSTOP');
    try {
      for (let i = 0; i < 4; i++) await validate(target('a'), { agent: 'a1', tool: 'Write', input: { file_path: `/workspace/current/paused-${i}.md`, content: 'x' } });
      await assert.rejects(writeFile(join(target('a'), 'current', 'during-the-pause.md'), 'lost?\n'));
      // The operator's relists keep reconciling the project; each now fails on Redis and is requeued.
      const failedBefore = failedReconciles(scrapes.healthy);
      await eventually('the operator fails a reconcile while Redis is paused', async () => (failedReconciles(await scrapeBoth()) > failedBefore ? true : undefined), 30_000, 250);
      scrapes.degraded = await scrapeBoth();
    } finally {
      process.kill(Number(pid), 'SIGCONT');
    }
    operatorScrape = parseScrape(await scrape(operatorMetrics));
  });

  /**
   * The plugin's scrape plus the operator's reconcile series at the same moment (not the operator's
   * process and nodejs series: they carry no instance label here and would clash with the plugin's).
   */
  async function scrapeBoth(): Promise<Sample[]> {
    const own = parseScrape(await scrape(operatorMetrics)).filter((s) => s.name.startsWith(`${METRIC.reconcile}_`));
    return [...parseScrape(await scrape(pluginMetrics)), ...own];
  }
  const failedReconciles = (samples: Sample[]) =>
    samples.filter((s) => s.name === `${METRIC.reconcile}_count` && s.labels.result !== 'ok').reduce((n, s) => n + s.value, 0);

  /** The operator's SLO series for the project, next to the plugin's: the other half of every per-project join. */
  const withSlo = (samples: Sample[]) => [...samples, ...operatorScrape.filter((s) => Object.values(SLO_METRIC).includes(s.name as never))];

  after(async () => {
    csi?.close();
    await plugin?.kill('SIGKILL');
    if (operator && operator.exitCode === null) {
      const gone = new Promise((r) => operator?.once('exit', r));
      operator.kill('SIGKILL');
      await gone;
    }
    if (dir) await detachAllUnder(dir.dir);
    await kube?.stop();
    await redis?.stop();
    await dir?.remove();
  });

  test('the operator counts the mounts the plugin serves', () => {
    assert.equal(activeMountsSeen, 2);
  });

  test('the operator exports the project\'s SLO as series, in seconds and as a ratio', () => {
    const slo = (name: string) => operatorScrape.find((s) => s.name === name && s.labels.namespace === 'team' && s.labels.project === 'demo')?.value;
    assert.deepEqual(Object.values(SLO_METRIC).map(slo), [0.25, 0.25, 0.25, 0.01]);
  });

  test('every alert in the chart fires on the degraded scrapes, per project where it joins an SLO, and none on the healthy ones', async () => {
    const text = await readFile(CHART_RULES, 'utf8');
    const rules = fleetRuleGroups().flatMap((g) => g.rules);
    assert.deepEqual([...text.matchAll(/- alert: (\w+)/g)].map((m) => m[1]), rules.map((r) => r.alert), 'the chart file holds the rules of operator/src/monitoring.ts');
    // Per-project alerts carry the project they fired for; fleet-wide ones (CSI calls, breakers) none.
    const expected = rules
      .map((r) => (/by \(namespace, project/.test(r.expr) ? `{alertname="${r.alert}", namespace="team", project="demo"}` : `{alertname="${r.alert}"}`))
      .sort();
    const tmp = await tempDir('lhb-alerts-promtool-');
    try {
      await writeFile(join(tmp.dir, 'rules.yaml'), text);
      const at = `${STEPS - 5}m`;
      const tests = {
        rule_files: ['rules.yaml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: seriesBetween(scrapes.start, withSlo(scrapes.healthy), STEPS),
            promql_expr_test: [{ expr: 'ALERTS', eval_time: at, exp_samples: [] }],
          },
          {
            interval: '1m',
            input_series: seriesBetween(scrapes.healthy, withSlo(scrapes.degraded), STEPS),
            promql_expr_test: [
              {
                expr: 'count by (alertname, namespace, project) (ALERTS{alertstate="firing"})',
                eval_time: at,
                exp_samples: expected.map((labels) => ({ labels, value: 1 })),
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

  test('every metric name and label value the rules and dashboard select is exported by the running processes', () => {
    const exported = [...scrapes.degraded, ...operatorScrape];
    const missing: string[] = [];
    for (const expr of allExpressions()) {
      for (const selector of expr.matchAll(/(lighthouse_bridge_\w+)(?:\{([^}]*)\})?/g)) {
        const name = selector[1] ?? '';
        const samples = exported.filter((s) => s.name === name);
        if (samples.length === 0) missing.push(`${name} (in ${expr})`);
        for (const matcher of (selector[2] ?? '').matchAll(/(\w+)(!?=)"([^"]*)"/g)) {
          const [, label = '', op, value] = matcher;
          const ok = op === '=' ? samples.some((s) => s.labels[label] === value) : samples.some((s) => label in s.labels);
          if (!ok) missing.push(`${name}{${label}${op}"${value}"} (in ${expr})`);
        }
      }
    }
    assert.deepEqual(missing, []);
    // The append that met the paused Redis is told apart from the ones that succeeded.
    const appends = (outcome: string) => scrapes.degraded.find((s) => s.name === 'lighthouse_bridge_store_append_duration_seconds_count' && s.labels.outcome === outcome)?.value ?? 0;
    assert.ok(appends('ok') > 0 && appends('error') > 0, `store appends ok=${appends('ok')} error=${appends('error')}`);
    for (const stock of ['process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds', 'lighthouse_bridge_build_info']) {
      assert.ok(scrapes.healthy.some((s) => s.name === stock), `node plugin exports ${stock}`);
      assert.ok(operatorScrape.some((s) => s.name === stock), `operator exports ${stock}`);
    }
  });
});
