import type { ProjectId } from '@lighthouse-bridge/core';
import type { Logger } from '@lighthouse-bridge/core/observability';
import { mountMember, refreshMounts, removeMount, type RedisClient } from '@lighthouse-bridge/core/redis';
import type { MountRequest, Mounter } from './mounter.js';

export interface MountRegistryOptions {
  client: RedisClient;
  nodeId: string;
  /** An entry not refreshed for this long stops counting; refreshed every third of it. */
  expiryMs: number;
  log: Logger;
}

/**
 * Publishes which targets this node plugin serves to the project's mount registry in Redis
 * (core/src/redis/mounts.ts), so the operator can count live mounts. A write that fails is logged
 * and left to the next heartbeat: the count is a report, never a reason to refuse a mount.
 */
export class MountRegistry {
  private readonly live = new Map<string, ProjectId>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: MountRegistryOptions) {
    this.timer = setInterval(() => void this.refreshAll(), Math.max(100, o.expiryMs / 3));
    this.timer.unref();
  }

  async add(project: ProjectId, target: string): Promise<void> {
    this.live.set(target, project);
    await this.write(project, () => refreshMounts(this.o.client, project, [mountMember(this.o.nodeId, target)], this.o.expiryMs));
  }

  async remove(target: string): Promise<void> {
    const project = this.live.get(target);
    if (!project) return;
    this.live.delete(target);
    await this.write(project, () => removeMount(this.o.client, project, mountMember(this.o.nodeId, target)));
  }

  /**
   * Leaves the entries: after SIGTERM the next instance recovers the mounts and refreshes them;
   * if none comes, they expire.
   */
  close(): void {
    clearInterval(this.timer);
    this.o.client.disconnect();
  }

  private async refreshAll(): Promise<void> {
    const byProject = new Map<string, { project: ProjectId; members: string[] }>();
    for (const [target, project] of this.live) {
      const key = `${project.namespace}/${project.name}`;
      const entry = byProject.get(key) ?? { project, members: [] };
      entry.members.push(mountMember(this.o.nodeId, target));
      byProject.set(key, entry);
    }
    await Promise.all([...byProject.values()].map(({ project, members }) => this.write(project, () => refreshMounts(this.o.client, project, members, this.o.expiryMs))));
  }

  private async write(project: ProjectId, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.o.log.warn('mount registry not updated; the next heartbeat retries', { project: `${project.namespace}/${project.name}`, error: (error as Error).message });
    }
  }
}

/** `inner`, with every mount it starts or stops recorded in `registry` (publish, recovery and unpublish alike). */
export function registeredMounter(inner: Mounter, registry: MountRegistry): Mounter {
  return {
    async mount(request: MountRequest) {
      await inner.mount(request);
      await registry.add(request.project, request.target);
    },
    async unmount(target: string) {
      await inner.unmount(target);
      await registry.remove(target);
    },
    serves: (target) => inner.serves(target),
    held: (target) => inner.held(target),
    get size() {
      return inner.size;
    },
  };
}
