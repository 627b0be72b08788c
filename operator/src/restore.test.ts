import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { kubeToolsAvailable } from '@lighthouse-bridge/test/kube';
import type { RedisServer } from '@lighthouse-bridge/test/redis';
import { resourcePath, type BridgeProject, type Condition } from './bridgeProject.js';
import { KubeApiError, type KubeClient } from './kubeClient.js';
import { restoreJobName } from './restore.js';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { startOperatorWorld, TEST_IMAGE, type OperatorWorld } from './testing/testEnv.js';

const skip = kubeToolsAvailable() ? false : 'kube-apiserver/etcd not built: run bash test/setup/tools/kube.sh';
const WAIT_MS = 20_000;
const NS = 'restore';

interface Job {
  metadata: { name: string; uid: string; annotations?: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }> };
  spec: {
    backoffLimit: number;
    template: {
      spec: {
        restartPolicy: string;
        containers: Array<{ image: string; args: string[]; env: Array<{ name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>; volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }> }>;
        volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string; readOnly?: boolean } }>;
      };
    };
  };
}

/**
 * There is no Job controller or kubelet here: the test writes the Job's status as the Job
 * controller would when the import pod exits. The real run is the real-cluster e2e's (ADR 0065).
 */
const FINISHED = {
  succeeded: [
    { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' },
    { type: 'Complete', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' },
  ],
  failed: [
    { type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
    { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
  ],
};

describe('spec.restoreFrom against a real kube-apiserver and a real Redis', { skip }, () => {
  let world: OperatorWorld | undefined;
  let kube: KubeClient;
  let redis: RedisServer;
  let admin: Redis;

  before(async () => {
    world = await startOperatorWorld([NS], () => undefined);
    ({ kube, redis, admin } = world);
  });
  after(async () => {
    await world?.stop();
  });

  const create = (name: string, spec: unknown) =>
    kube.create<BridgeProject>(resourcePath(NS), { apiVersion: 'bridge.lighthouse.dev/v1alpha1', kind: 'BridgeProject', metadata: { name }, spec });
  const get = (name: string) => kube.get<BridgeProject>(resourcePath(NS, name));
  const condition = (bp: BridgeProject, type: Condition['type']) => bp.status?.conditions?.find((c) => c.type === type);
  const waitRestored = (name: string, status: Condition['status'], reason: string) =>
    eventually(
      `${name} Restored=${status} (${reason})`,
      async () => {
        const bp = await get(name);
        const c = condition(bp, 'Restored');
        return c?.status === status && c.reason === reason && bp.status?.observedGeneration === bp.metadata.generation ? bp : undefined;
      },
      WAIT_MS,
      100,
    );
  const jobPath = (name: string) => `/apis/batch/v1/namespaces/${NS}/jobs/${name}`;
  const finish = async (jobName: string, how: keyof typeof FINISHED) => {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const conditions = FINISHED[how].map((c) => ({ ...c, lastProbeTime: now, lastTransitionTime: now }));
    const counts = how === 'succeeded' ? { succeeded: 1, completionTime: now } : { failed: 3 };
    await kube.patch(`${jobPath(jobName)}/status`, 'merge', { status: { startTime: now, conditions, ...counts } });
  };
  const user = (name: string) => `lhb-${NS}.${name}.restore`;
  const userExists = async (name: string) => (await admin.call('ACL', 'GETUSER', user(name))) !== null;

  it('runs one import Job with the archive mounted read-only, and holds Ready until it succeeded', async () => {
    const bp = await create('alpha', { restoreFrom: { pvc: 'backups', path: 'restore/alpha/20260101T000000Z.lhb' } });
    const progressing = await waitRestored('alpha', 'Unknown', 'Progressing');
    assert.equal(condition(progressing, 'Ready')?.status, 'False');
    assert.equal(condition(progressing, 'Ready')?.reason, 'RestoredNotReady');

    const name = restoreJobName(bp);
    const job = await kube.get<Job>(jobPath(name));
    assert.deepEqual(job.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]), [['BridgeProject', 'alpha', bp.metadata.uid, true]]);
    const pod = job.spec.template.spec;
    assert.equal(pod.restartPolicy, 'Never');
    const [container] = pod.containers;
    assert.equal(container?.image, TEST_IMAGE);
    assert.deepEqual(container?.args, ['import', 'restore/alpha', '--from', '/archive/restore/alpha/20260101T000000Z.lhb']);
    assert.deepEqual(container?.volumeMounts, [{ name: 'archive', mountPath: '/archive', readOnly: true }]);
    assert.deepEqual(pod.volumes, [{ name: 'archive', persistentVolumeClaim: { claimName: 'backups', readOnly: true } }]);
    assert.deepEqual(container?.env.find((e) => e.name === 'LHB_STORE')?.valueFrom?.secretKeyRef, { name, key: 'url' });

    // The Job's credentials write this project's keys and nothing else.
    const secret = await kube.get<{ data: Record<string, string> }>(`/api/v1/namespaces/${NS}/secrets/${name}`);
    const url = new URL(Buffer.from(secret.data.url ?? '', 'base64').toString('utf8'));
    assert.equal(decodeURIComponent(url.username), user('alpha'));
    assert.equal(url.port, String(redis.port));
    const writer = new Redis(redis.port, '127.0.0.1', { username: user('alpha'), password: decodeURIComponent(url.password), maxRetriesPerRequest: 1, enableReadyCheck: false });
    try {
      // Only what an import writes: the log, snapshots, blobs — not decisions, config or mounts.
      assert.equal(await writer.xadd(`lhb:{${NS}/alpha}:log`, '*', 'e', '{}') !== null, true);
      assert.equal(await writer.set(`lhb:{${NS}/alpha}:blob:${'a'.repeat(64)}:0`, 'x'), 'OK');
      assert.equal(await writer.zadd(`lhb:{${NS}/alpha}:snaps`, 1, '1'), 1);
      await writer.del(`lhb:{${NS}/alpha}:log`, `lhb:{${NS}/alpha}:blob:${'a'.repeat(64)}:0`, `lhb:{${NS}/alpha}:snaps`);
      for (const kind of [`dec:${'0'.repeat(64)}`, 'config', 'mounts']) {
        await assert.rejects(writer.set(`lhb:{${NS}/alpha}:${kind}`, 'x'), /NOPERM/, kind);
      }
      await assert.rejects(writer.set(`lhb:{${NS}/other}:log`, 'x'), /NOPERM/);
      await assert.rejects(writer.call('FLUSHALL'), /NOPERM/);
      await assert.rejects(writer.call('ACL', 'LIST'), /NOPERM/);
    } finally {
      writer.disconnect();
      await admin.del(`lhb:{${NS}/alpha}:probe`);
    }

    await finish(name, 'succeeded');
    const restored = await waitRestored('alpha', 'True', 'Restored');
    assert.equal(restored.status?.restoredFrom, 'backups/restore/alpha/20260101T000000Z.lhb');
    await eventually('Ready=True', async () => condition(await get('alpha'), 'Ready')?.status === 'True', WAIT_MS, 100);
    assert.equal(await userExists('alpha'), false, 'the write access ends with the Job');
    assert.equal(await kube.getOptional(`/api/v1/namespaces/${NS}/secrets/${name}`), undefined);
  });

  it('ignores a changed restoreFrom after a successful restore, and says so', async () => {
    const before = await kube.get<Job>(jobPath(restoreJobName(await get('alpha'))));
    await kube.patch(resourcePath(NS, 'alpha'), 'merge', { spec: { restoreFrom: { pvc: 'backups', path: 'restore/alpha/20270101T000000Z.lhb' } } });
    const bp = await waitRestored('alpha', 'True', 'Restored');
    assert.match(condition(bp, 'Restored')?.message ?? '', /restored from backups\/restore\/alpha\/20260101T000000Z\.lhb; spec\.restoreFrom is now backups\/restore\/alpha\/20270101T000000Z\.lhb, which has no effect/);
    const job = await kube.get<Job>(jobPath(before.metadata.name));
    assert.equal(job.metadata.uid, before.metadata.uid, 'the same Job, not a second import');
    assert.equal(await userExists('alpha'), false);
  });

  it('creates no Job when the log is not empty (Restored=False, TargetNotEmpty)', async () => {
    await admin.xadd(`lhb:{${NS}/busy}:log`, '1-0', 'e', '{}');
    const bp = await create('busy', { restoreFrom: { pvc: 'backups', path: 'busy.lhb' } });
    const refused = await waitRestored('busy', 'False', 'TargetNotEmpty');
    assert.match(condition(refused, 'Restored')?.message ?? '', /holds 1 events/);
    assert.equal(condition(refused, 'Ready')?.status, 'False');
    assert.equal(await kube.getOptional(jobPath(restoreJobName(bp))), undefined);
    assert.equal(await userExists('busy'), false);
    assert.equal(await admin.xlen(`lhb:{${NS}/busy}:log`), 1, 'the log is untouched');
  });

  it("reports the Job's failure reason, and replaces the failed Job when restoreFrom changes", async () => {
    const bp = await create('broken', { restoreFrom: { pvc: 'backups', path: 'bad.lhb' } });
    const name = restoreJobName(bp);
    await waitRestored('broken', 'Unknown', 'Progressing');
    const first = await kube.get<Job>(jobPath(name));
    await finish(name, 'failed');
    const failed = await waitRestored('broken', 'False', 'BackoffLimitExceeded');
    assert.match(condition(failed, 'Restored')?.message ?? '', /Job broken-bridge-restore failed: Job has reached the specified backoff limit; delete the Job or change spec\.restoreFrom/);
    assert.equal(condition(failed, 'Ready')?.reason, 'RestoredNotReady');
    assert.equal(failed.status?.restoredFrom, undefined);
    assert.equal(await userExists('broken'), false, 'a failed restore keeps no write access');

    await kube.patch(resourcePath(NS, 'broken'), 'merge', { spec: { restoreFrom: { pvc: 'backups', path: 'good.lhb' } } });
    const second = await eventually(
      'a new Job for good.lhb',
      async () => {
        const job = await kube.getOptional<Job>(jobPath(name));
        return job && job.metadata.uid !== first.metadata.uid ? job : undefined;
      },
      WAIT_MS,
      100,
    );
    assert.deepEqual(second.spec.template.spec.containers[0]?.args.slice(-1), ['/archive/good.lhb']);
    await waitRestored('broken', 'Unknown', 'Progressing');
    assert.equal(await userExists('broken'), true);
  });

  it('refuses a restoreFrom outside the claim or malformed, creating nothing', async () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ pvc: 'backups', path: '../other/x.lhb' }, /spec\.restoreFrom\.path/],
      [{ pvc: 'backups', path: 'a/../../x.lhb' }, /spec\.restoreFrom\.path/],
      [{ pvc: 'backups', path: '/etc/x.lhb' }, /spec\.restoreFrom\.path/],
      [{ pvc: 'backups', path: 'a//x.lhb' }, /spec\.restoreFrom\.path/],
      [{ pvc: 'backups', path: 'a/.hidden.lhb' }, /spec\.restoreFrom\.path/],
      [{ pvc: 'backups', path: 'x.tar' }, /spec\.restoreFrom\.path/],
      [{ pvc: 'Backups_1', path: 'x.lhb' }, /spec\.restoreFrom\.pvc/],
      [{ path: 'x.lhb' }, /spec\.restoreFrom\.pvc: Required value/],
      [{ pvc: 'backups' }, /spec\.restoreFrom\.path: Required value/],
    ];
    for (const [restoreFrom, message] of bad) {
      const refused = await create('bad', { restoreFrom }).then(
        () => assert.fail(`accepted ${JSON.stringify(restoreFrom)}`),
        (error: unknown) => error,
      );
      assert.ok(refused instanceof KubeApiError && refused.status === 422, `422 for ${JSON.stringify(restoreFrom)}: ${String(refused)}`);
      assert.match(refused.message, message);
      assert.equal(await kube.getOptional(resourcePath(NS, 'bad')), undefined);
    }
  });
});
