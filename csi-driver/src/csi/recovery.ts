import { stat } from 'node:fs/promises';
import { status } from '@grpc/grpc-js';
import { Counter } from 'prom-client';
import { mounts, registry, type Logger } from '@lighthouse-bridge/core/observability';
import type { ConfigSource } from './access.js';
import { CsiError } from './errors.js';
import { lazyUnmount } from '../mount/mountpoint.js';
import { probeTarget } from './health.js';
import type { AbortIfBusy } from './abortIfBusy.js';
import { mountRequestFor, type Mounter } from './mounter.js';
import type { DriverState, PublishRecord } from './state.js';
import { checkAncestors } from './targetPath.js';

export type RecoveryOutcome = 'taken over' | 'remounted' | 'forgotten' | 'foreign' | 'failed';

/** Not among the shared metric names yet, so registered here, into the shared registry. */
const recoveries = new Counter({
  name: 'lighthouse_bridge_csi_recoveries_total',
  help: 'Publish records the node plugin took over (live mount in custody), repaired (remounted), forgot, left alone or failed to repair',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export interface RecoveryDeps {
  state: DriverState;
  mounter: Mounter;
  configs: ConfigSource;
  targets: AbortIfBusy;
  log: Logger;
}

/** Mount again at most this many targets at once: enough to meet the 5 s budget, not a stampede. */
const PARALLEL = 8;

/**
 * Brings every recorded publish that this process does not serve back in place: a live mount whose
 * connection the keeper held through the restart is taken over, so running pods carry on (ADR
 * 0083); otherwise (no custody, or the keeper died too) a dead FUSE mount
 * (ENOTCONN after the previous plugin died) is detached and mounted again; a target that is not
 * mounted is mounted; a record whose target directory is gone is forgotten, because kubelet
 * removes the directory once it no longer wants the volume. Records stay on failure, so the next
 * pass retries them. A remount serves new pods only: a running container's bind keeps the dead
 * mount, even with `mountPropagation: HostToContainer` (ADR 0071).
 */
export async function recoverMounts(deps: RecoveryDeps): Promise<Map<string, RecoveryOutcome>> {
  const unserved = (await deps.state.publishes.list()).filter((r) => !deps.mounter.serves(r.targetPath));
  // Live mounts in custody all at once: their pods wait on them, and a rolling upgrade's handover
  // retires the predecessor only once every one of them is prepared.
  const held = unserved.filter((r) => deps.mounter.held(r.targetPath));
  const records = unserved.filter((r) => !held.includes(r));
  const outcomes = new Map<string, RecoveryOutcome>();
  const recover = async (record: PublishRecord): Promise<void> => {
    const outcome = await recoverOne(deps, record).catch((error: unknown) => {
      deps.log.error('mount recovery failed', { target: record.targetPath, volumeId: record.volumeId, error: (error as Error).message });
      return 'failed' as const;
    });
    if (outcome) {
      outcomes.set(record.targetPath, outcome);
      recoveries.inc({ outcome });
    }
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let record = records[next++]; record; record = records[next++]) await recover(record);
  };
  await Promise.all([...held.map(recover), ...Array.from({ length: Math.min(PARALLEL, records.length) }, worker)]);
  mounts.set(deps.mounter.size);
  return outcomes;
}

async function recoverOne(deps: RecoveryDeps, record: PublishRecord): Promise<RecoveryOutcome | undefined> {
  const target = record.targetPath;
  return deps.targets
    .run(target, async (): Promise<RecoveryOutcome | undefined> => {
      if (deps.mounter.serves(target)) return undefined;
      // A symbolic link planted in the path since the publish must not redirect the mount.
      await checkAncestors(target);
      // Before any probe: a held connection nobody serves yet looks hung, and the probe's verdict
      // would detach the very mount the pods are waiting on. A failed takeover keeps it held: the
      // pods wait, and the next pass tries again.
      if (deps.mounter.held(target)) {
        await mountRecord(deps, record);
        deps.log.info('took over the live mount after restart', { target, volumeId: record.volumeId });
        return 'taken over';
      }
      // One look at the target: probeTarget reads the mount table before it stats anything.
      const probe = await probeTarget(target);
      if (probe.state === 'healthy') {
        deps.log.warn('target is mounted and answering but not served by this plugin; leaving it', { target });
        return 'foreign';
      }
      if (probe.state !== 'unmounted') {
        await lazyUnmount(target);
      } else if (!(await exists(target))) {
        await deps.state.publishes.remove(target);
        deps.log.info('forgot a publish whose target is gone', { target, volumeId: record.volumeId });
        return 'forgotten';
      }
      await mountRecord(deps, record);
      deps.log.info('mounted again after restart', { target, volumeId: record.volumeId });
      return 'remounted';
    })
    .catch((error: unknown) => {
      // A publish or unpublish holds the target: it decides, and the next pass looks again.
      if (error instanceof CsiError && error.code === status.ABORTED) return undefined;
      throw error;
    });
}

async function mountRecord(deps: RecoveryDeps, record: PublishRecord): Promise<void> {
  // A failed read must not mount with default limits: it fails this record, and the next pass retries.
  const config = await deps.configs.get(record.project);
  await deps.mounter.mount(mountRequestFor(record, config));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
