import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { kubeToolsAvailable } from '@lighthouse-bridge/test/kube';
import { ARCHIVE_MOUNT, resourcePath, restoreJobName, type BridgeProject } from '@lighthouse-bridge/operator';
import { startOperatorWorld, type OperatorWorld } from '@lighthouse-bridge/operator/testing';

const CLI = fileURLToPath(new URL('../main.js', import.meta.url));
// `export` and `import` are built alongside (issue 15); this runs once they are here.
const skip = kubeToolsAvailable() ? false : 'kube-apiserver not built';

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const { LHB_STORE: _store, ...rest } = process.env;
    execFile(process.execPath, [CLI, ...args], { env: { ...rest, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

interface Job {
  spec: { template: { spec: { containers: Array<{ args: string[]; env: Array<{ name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }> }> } } };
}

/**
 * The restore Job's container, run as the kubelet would run it (its args, its env from the
 * operator's Secret, the claim at ARCHIVE_MOUNT), since this environment has no kubelet.
 */
describe("spec.restoreFrom: the operator's Job command imports with the credentials it was given", { skip }, () => {
  let world: OperatorWorld | undefined;
  let dir: string;

  before(async () => {
    world = await startOperatorWorld(['team'], () => undefined);
    dir = await mkdtemp(join(tmpdir(), 'lhb-restore-job-'));
  });
  after(async () => {
    await world?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('restores a project from an archive; Restored=True once the Job is done, with the head of the source', async () => {
    const { kube, redis } = world as OperatorWorld;
    const file = join(dir, 'notes.md');
    await writeFile(file, 'from the archive\n');
    for (const name of ['a.md', 'b.md']) assert.equal((await cli(['put', 'team/source', name, '--from', file, '--store', redis.url])).code, 0);
    assert.equal((await cli(['export', 'team/source', '--to', join(dir, 'team-source.lhb'), '--store', redis.url])).code, 0);

    const bp = await kube.create<BridgeProject>(resourcePath('team'), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name: 'copy' }, spec: { restoreFrom: { pvc: 'archives', path: 'team-source.lhb' } } });
    const name = restoreJobName(bp);
    const job = await eventually('the restore Job', () => kube.getOptional<Job>(`/apis/batch/v1/namespaces/team/jobs/${name}`), 20_000, 100);
    const [container] = job.spec.template.spec.containers;
    assert.ok(container);
    const env: Record<string, string> = {};
    for (const e of container.env) {
      const secret = await kube.get<{ data: Record<string, string> }>(`/api/v1/namespaces/team/secrets/${e.valueFrom.secretKeyRef.name}`);
      env[e.name] = Buffer.from(secret.data[e.valueFrom.secretKeyRef.key] ?? '', 'base64').toString('utf8');
    }
    const args = container.args.map((a) => (a.startsWith(`${ARCHIVE_MOUNT}/`) ? join(dir, a.slice(ARCHIVE_MOUNT.length + 1)) : a));
    const run = await cli(args, env);
    assert.equal(run.code, 0, run.stderr);

    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await kube.patch(`/apis/batch/v1/namespaces/team/jobs/${name}/status`, 'merge', {
      status: {
        startTime: now,
        completionTime: now,
        succeeded: 1,
        conditions: ['SuccessCriteriaMet', 'Complete'].map((type) => ({ type, status: 'True', reason: 'CompletionsReached', lastProbeTime: now, lastTransitionTime: now })),
      },
    });
    const restored = await eventually(
      'Restored=True',
      async () => {
        const current = await kube.get<BridgeProject>(resourcePath('team', 'copy'));
        return current.status?.conditions?.find((c) => c.type === 'Restored')?.status === 'True' ? current : undefined;
      },
      20_000,
      100,
    );
    assert.equal(restored.status?.head, 2);
    assert.equal((await cli(['cat', 'team/copy', 'b.md', '--store', redis.url])).stdout, 'from the archive\n');
  });
});
