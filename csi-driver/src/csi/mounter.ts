import type { EventStore, ProjectConfig, ProjectId, ProjectLimits } from '@lighthouse-bridge/core';
import type { Validator } from '@lighthouse-bridge/core/speed-layer';
import { mountProject, type MountedProject } from '../mount/mountProject.js';
import { detachDeadFuseMount, lazyUnmount, mountAt } from '../mount/mountpoint.js';
import type { CustodySource } from './custodySource.js';
import type { PublishRecord } from './state.js';

export interface MountRequest {
  project: ProjectId;
  target: string;
  readOnly: boolean;
  actor: string;
  limits?: Partial<ProjectLimits>;
  /** Where the pod's containers mount the volume, when known. */
  workspacePath?: string;
}

/** What serves a publish: the record's target and mode, with the limits from the project's config. */
export function mountRequestFor(record: PublishRecord, config: ProjectConfig | undefined): MountRequest {
  return {
    project: record.project,
    target: record.targetPath,
    readOnly: record.readOnly,
    actor: record.actor,
    ...(config?.limits ? { limits: config.limits } : {}),
    ...(record.workspacePath === undefined ? {} : { workspacePath: record.workspacePath }),
  };
}

/** The seam between the CSI services and the filesystem that serves a project at a path. */
export interface Mounter {
  /** Serves the project at `target` (an existing, empty, unmounted directory). */
  mount(request: MountRequest): Promise<void>;
  /**
   * Stops serving `target` and detaches a dead FUSE mount left there by an earlier instance;
   * never anything else mounted there.
   */
  unmount(target: string): Promise<void>;
  /** True when this process serves `target`. */
  serves(target: string): boolean;
  /**
   * True when a predecessor's live connection at `target` is in custody and this process does not
   * serve it: mount() takes it over, in place, and the pods using it never see it end.
   */
  held(target: string): boolean;
  /** How many mounts this process serves. */
  readonly size: number;
}

/** Real FUSE mounts in this process, one per target, all over the plugin's one store. */
export class FuseMounter implements Mounter {
  private readonly mounted = new Map<string, { mount: MountedProject; validator: Validator | undefined }>();

  constructor(
    private readonly store: EventStore,
    private readonly onError?: (error: Error, context: { op?: string; project: string }) => void,
    /** Makes the speed layer that answers the mount's `/.bridge/validate`. */
    private readonly validatorFor?: (project: ProjectId, workspacePath: string | undefined) => Promise<Validator>,
    /** Keeps each mount's connection beyond this process; without it a crash ends every mount. */
    private readonly custody?: CustodySource,
  ) {}

  get size(): number {
    return this.mounted.size;
  }

  serves(target: string): boolean {
    return this.mounted.has(target);
  }

  held(target: string): boolean {
    return !this.mounted.has(target) && (this.custody?.holds(target) ?? false);
  }

  async mount(request: MountRequest): Promise<void> {
    const custody = await this.custody?.custodyFor(request.target);
    const validator = await this.validatorFor?.(request.project, request.workspacePath);
    const mount = await mountProject({
      ...(validator ? { validator } : {}),
      store: this.store,
      project: request.project,
      mountpoint: request.target,
      readOnly: request.readOnly,
      actor: request.actor,
      ...(request.limits ? { limits: request.limits } : {}),
      ...(this.onError ? { onError: this.onError } : {}),
      ...(custody ? { custody } : {}),
    }).catch(async (error: unknown) => {
      await validator?.close();
      throw error;
    });
    this.mounted.set(request.target, { mount, validator });
  }

  /**
   * Waits, up to `deadlineMs`, until no mount has a change queued, attribute changes that already
   * returned among them (ADR 0098); the caller exits right after, in the same turn, so none is
   * answered meanwhile. For a plugin that stops and leaves its mounts to the next instance.
   */
  async settle(deadlineMs: number): Promise<boolean> {
    const until = performance.now() + deadlineMs;
    const busy = (): MountedProject[] => [...this.mounted.values()].map((m) => m.mount).filter((m) => !m.workspace.idle);
    for (let waiting = busy(); waiting.length > 0; waiting = busy()) {
      const left = until - performance.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(waiting.map((m) => m.workspace.sync().catch(() => undefined))),
        new Promise((expired) => (timer = setTimeout(expired, left))),
      ]);
      clearTimeout(timer);
    }
    return true;
  }

  async unmount(target: string): Promise<void> {
    const served = this.mounted.get(target);
    if (served) {
      this.mounted.delete(target);
      try {
        // Detaches lazily by itself when a process still has files open.
        await served.mount.unmount();
      } catch {
        // Closing the workspace failed after the detach, or the detach did: ours is on top, detach it.
        if (await mountAt(target)) await lazyUnmount(target);
      }
      await served.validator?.close();
    } else if (this.held(target)) {
      // A predecessor's connection nobody will serve again: ending it makes the mount dead, detached below.
      this.custody?.keeper.drop(target);
    }
    await detachDeadFuseMount(target);
  }
}
