import { mkdir, rmdir } from 'node:fs/promises';
import { mounts, projectLabels, VOLUME_CONDITION, volumeHealth } from '@lighthouse-bridge/core/observability';
import { decideAccess, type ConfigSource } from './access.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, permissionDenied } from './errors.js';
import { detachDeadFuseMount, mountAt } from '../mount/mountpoint.js';
import { probeTarget } from './health.js';
import type { AbortIfBusy } from './abortIfBusy.js';
import type { Empty, NodeGetVolumeStatsRequest, NodeGetVolumeStatsResponse, NodePublishVolumeRequest, NodeUnpublishVolumeRequest } from './messages.js';
import { mountRequestFor, type Mounter } from './mounter.js';
import { publishIntent } from './publishIntent.js';
import type { DriverState, PublishRecord } from './state.js';
import { checkAncestors, checkedPath, checkVolumeId, inspectTarget, normalized, pathProblem } from './targetPath.js';

export interface NodeServiceOptions {
  nodeId: string;
  state: DriverState;
  mounter: Mounter;
  configs: ConfigSource;
  /** Shared with recovery so a repair and a publish never race on one target. */
  targets: AbortIfBusy;
  /** Refuse projects without an access configuration (`--require-access-config`). */
  requireAccessConfig: boolean;
}

/**
 * The Node service: one FUSE mount per target path, served by this process. What is mounted
 * where is recorded under the state dir before we answer, so a restarted plugin can bring it back.
 */
export class NodeService {
  constructor(private readonly o: NodeServiceOptions) {}

  async NodePublishVolume(request: NodePublishVolumeRequest): Promise<Empty> {
    const intent = publishIntent(request, this.o.nodeId);
    const { target, project, readOnly } = intent;
    await this.o.targets.run(target, async () => {
      const existing = await this.o.state.publishes.get(target);
      if (existing) {
        if (existing.volumeId !== intent.volumeId || existing.readOnly !== readOnly) {
          throw alreadyExists(`${target} already has volume ${existing.volumeId} published${existing.readOnly ? ' read-only' : ''}`);
        }
        if (this.o.mounter.serves(target)) return;
      }
      const config = await this.o.configs.get(project);
      const decision = decideAccess(project, config, intent.pod, readOnly, this.o.requireAccessConfig);
      if (!decision.allowed) throw permissionDenied(decision.reason);

      // A live connection the keeper held through our restart, which recovery has not taken over
      // yet: taking it over here serves the pods already using it (a failure leaves it held, for
      // recovery to retry). Without a record it is not known to be this volume's: it ends, and the
      // mount below replaces it.
      if (this.o.mounter.held(target)) {
        if (existing) {
          await this.o.mounter.mount(mountRequestFor(existing, config));
          mounts.set(this.o.mounter.size);
          return;
        }
        await this.o.mounter.unmount(target);
      }
      if ((await inspectTarget(target)) === 'mountpoint') {
        // A dead mount left by a previous plugin instance would make the new mount fail, and mkdir
        // itself fails on it (ENOTCONN): detach it. Anyone else's mount stays where it is.
        if (!(await detachDeadFuseMount(target))) {
          const mounted = await mountAt(target);
          throw failedPrecondition(`${target} is already a mount point (${mounted?.fstype ?? 'unknown'}) that this plugin does not serve`);
        }
      }
      await mkdir(target, { recursive: true });
      const record: PublishRecord = {
        volumeId: intent.volumeId,
        targetPath: target,
        project,
        readOnly,
        ephemeral: intent.ephemeral,
        actor: intent.actor,
        ...(intent.workspacePath === undefined ? {} : { workspacePath: intent.workspacePath }),
        publishedAt: new Date().toISOString(),
      };
      // Recorded before mounting: a plugin killed in between leaves a record, which recovery
      // remounts and unpublish undoes, never a mount that no record names (unpublish would leave it).
      await this.o.state.publishes.put(target, record);
      try {
        await this.o.mounter.mount(mountRequestFor(record, config));
        // The mount table names the resolved mount point: if a symbolic link was swapped into the
        // path after the look above, the mount landed elsewhere and is taken back.
        if (!(await mountAt(target))) throw failedPrecondition(`${target} changed while it was being mounted; a target path must not contain a symbolic link`);
      } catch (error) {
        await this.o.mounter.unmount(target);
        await this.o.state.publishes.remove(target);
        throw error;
      }
      mounts.set(this.o.mounter.size);
    });
    return {};
  }

  /**
   * Undoes only what this plugin's publish records say it published: a target it has no record of
   * is answered OK (the call is idempotent) and left exactly as it is, whatever is mounted there.
   */
  async NodeUnpublishVolume(request: NodeUnpublishVolumeRequest): Promise<Empty> {
    checkVolumeId(request.volume_id);
    const target = checkedPath('target_path', request.target_path);
    await this.o.targets.run(target, async () => {
      const record = await this.o.state.publishes.get(target);
      if (!record) return;
      if (record.volumeId !== request.volume_id) throw notFound(`volume ${request.volume_id} is not published at ${target} (volume ${record.volumeId} is)`);
      await checkAncestors(target);
      await this.o.mounter.unmount(target);
      await this.o.state.publishes.remove(target);
      volumeHealth.remove({ volume: record.volumeId, condition: VOLUME_CONDITION.abnormal, ...projectLabels(record.project) });
      mounts.set(this.o.mounter.size);
      // rmdir, never a recursive delete; a directory someone else mounted on or wrote into stays.
      await rmdir(target).catch((error: NodeJS.ErrnoException) => {
        if (!['ENOENT', 'ENOTEMPTY', 'EBUSY'].includes(error.code ?? '')) throw error;
      });
    });
    return {};
  }

  async NodeGetVolumeStats(request: NodeGetVolumeStatsRequest): Promise<NodeGetVolumeStatsResponse> {
    checkVolumeId(request.volume_id);
    if (!request.volume_path) throw invalidArgument('volume_path is required');
    // Nothing is ever published at a path that is not a valid target: "not found", as CSI asks.
    const problem = pathProblem('volume_path', request.volume_path);
    if (problem) throw notFound(`volume ${request.volume_id} is not published there: ${problem}`);
    const path = normalized(request.volume_path);
    const record = await this.o.state.publishes.get(path);
    if (!record || record.volumeId !== request.volume_id) throw notFound(`volume ${request.volume_id} is not published at ${request.volume_path}`);
    const probe = await probeTarget(path);
    const abnormal = probe.state !== 'healthy';
    volumeHealth.set({ volume: record.volumeId, condition: VOLUME_CONDITION.abnormal, ...projectLabels(record.project) }, abnormal ? 1 : 0);
    if (probe.state === 'healthy') return { usage: probe.usage, volume_condition: { abnormal: false, message: 'mounted and answering' } };
    const message = probe.state === 'unmounted' ? 'not mounted; the plugin will mount it again' : probe.message;
    return { usage: [], volume_condition: { abnormal: true, message: `${probe.state}: ${message}` } };
  }

  async NodeGetCapabilities(): Promise<{ capabilities: Array<{ rpc: { type: string } }> }> {
    return { capabilities: ['GET_VOLUME_STATS', 'VOLUME_CONDITION'].map((type) => ({ rpc: { type } })) };
  }

  async NodeGetInfo(): Promise<{ node_id: string; max_volumes_per_node: number }> {
    return { node_id: this.o.nodeId, max_volumes_per_node: 0 };
  }
}
