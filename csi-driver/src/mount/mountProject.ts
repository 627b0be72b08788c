import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { formatProjectId, ProjectWorkspace, type EventStore, type ProjectId, type ProjectLimits } from '@lighthouse-bridge/core';
import { BridgeFs } from '../fuse/bridgeFs.js';
import { fuseTakeovers, projectLabels } from '@lighthouse-bridge/core/observability';
import { Custody, type CustodyOptions } from '../fuse/custody/custody.js';
import { mountKernel } from '../fuse/kernel/mount.js';
import type { CacheTimeouts } from '../fuse/kernel/session.js';
import type { ValidateBackend } from '../fuse/validation.js';
import { DEFAULT_WRITE_BUFFER_BYTES, WriteBudget } from '../fuse/writeBudget.js';
import { detachDeadFuseMount, lazyUnmount, mountAt } from './mountpoint.js';

export interface MountOptions {
  store: EventStore;
  project: ProjectId;
  mountpoint: string;
  readOnly?: boolean;
  actor: string;
  limits?: Partial<ProjectLimits>;
  /** Answers /.bridge/validate; without one the file answers `{"error": ...}`. */
  validator?: ValidateBackend;
  /** Bytes all files open for writing may buffer together; past it writes fail with ENOSPC. Default 256 MiB. */
  writeBufferBytes?: number;
  /**
   * What waits for the disk (ADR 0081): `fsync` (default) — fsync/fdatasync and unmount, while close
   * returns once the change is visible to every mount, and chmod/utimens of a recorded file before
   * it is stored (ADR 0098); `close` — every close and change too.
   */
  sync?: SyncMode;
  /**
   * Keeps the mount's FUSE connection outside this process (ADR 0083): after a crash, the same call
   * with the same custody takes the live mount over instead of mounting anew. Absent, a dead
   * process leaves a dead mount (ENOTCONN).
   */
  custody?: CustodyOptions;
  /** Failures the filesystem answered with EIO, and background workspace errors. Default: stderr. */
  onError?: (error: Error, context: { op?: string; project: string }) => void;
}

export type SyncMode = 'fsync' | 'close';
export const SYNC_MODES: readonly SyncMode[] = ['fsync', 'close'];

export interface MountedProject {
  readonly mountpoint: string;
  readonly workspace: ProjectWorkspace;
  readonly readOnly: boolean;
  /** True when this took over a live mount a predecessor served (custody). */
  readonly tookOver: boolean;
  /** Records files still dirty, detaches the mount (lazily when busy), closes the workspace. Idempotent. */
  unmount(): Promise<void>;
}

/** Something live is already mounted at the mountpoint. */
export class MountpointBusyError extends Error {
  override readonly name = 'MountpointBusyError';
}

/**
 * Bounded staleness of `current/` as seen through the kernel's caches: another writer's change shows
 * within this (the propagation budget is 100 ms), a new file too: "no such name" is cached as long
 * (git and compilers probe many missing names). Cached content of `current/` is dropped at each
 * open (ADR 0080), so a file opened after the change is seen reads it whole.
 */
export const CACHE_TIMEOUTS: CacheTimeouts = { entry: 0.05, attr: 0.05, negative: 0.05 };

/** Mounts one project. Several may be mounted in one process (the node plugin serves a whole node). */
export async function mountProject(options: MountOptions): Promise<MountedProject> {
  const mountpoint = resolve(options.mountpoint);
  const projectName = formatProjectId(options.project);
  const onError = options.onError ?? ((error, context) => process.stderr.write(`${projectName}${context.op ? ` ${context.op}` : ''}: ${error.stack ?? error.message}\n`));
  const custody = options.custody && Custody.claim(options.custody);
  const served = await serve(options, mountpoint, projectName, onError, custody).catch((error: unknown) => {
    custody?.abandon();
    throw error;
  });
  const { workspace, fs, native, readOnly } = served;
  if (custody?.takingOver) fuseTakeovers.inc(projectLabels(options.project));

  let unmounting: Promise<void> | undefined;
  return {
    mountpoint,
    workspace,
    readOnly,
    tookOver: custody?.takingOver ?? false,
    unmount: () =>
      (unmounting ??= (async () => {
        const report = (error: unknown) => onError(error instanceof Error ? error : new Error(String(error)), { op: 'unmount', project: projectName });
        await fs.commitAll(report);
        // Unmount waits for the disk like fsync does: nothing this mount recorded is left to chance.
        await workspace.sync().catch(report);
        fs.close();
        try {
          custody?.release();
        } catch (error) {
          report(error); // the keeper drops it by itself once the connection ends
        }
        try {
          await native.unmount();
        } catch {
          // Already gone (someone ran fusermount3 -u) or busy beyond -z: make sure nothing stays attached.
          if (await mountAt(mountpoint)) await lazyUnmount(mountpoint);
        }
        await workspace.close();
      })()),
  };
}

type OnError = (error: Error, context: { op?: string; project: string }) => void;

/** Opens the project and serves it at `mountpoint`: a new mount, or the live one custody holds. */
async function serve(options: MountOptions, mountpoint: string, projectName: string, onError: OnError, custody: Custody | undefined) {
  if (!custody?.takingOver) await prepareMountpoint(mountpoint);
  const workspace = await ProjectWorkspace.open({
    store: options.store,
    project: options.project,
    actor: options.actor,
    ...(options.limits ? { limits: options.limits } : {}),
    live: true,
    durability: options.sync === 'close' ? 'durable' : 'visible',
    onError: (error) => onError(error, { project: projectName }),
  });
  const readOnly = options.readOnly ?? false;
  const writeBudget = new WriteBudget(options.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES, (message) => onError(new Error(message), { op: 'write', project: projectName }));
  const mirrors = custody?.mirrors;
  const fs = new BridgeFs({
    workspace,
    readOnly,
    mountpoint,
    validator: options.validator,
    writeBudget,
    mirrors: mirrors && ((content) => mirrors.create(content)),
    deferAttributes: options.sync !== 'close',
  });
  const report = (op: string, error: unknown): void => {
    const e = error instanceof Error ? error : new Error(String(error));
    fs.noteError(`${op}: ${e.message}`);
    onError(e, { op, project: projectName });
  };

  // While the tail holds another writer's changes back, a missing name may be one of them.
  const setup = { fs, project: options.project, cache: CACHE_TIMEOUTS, rememberMissing: () => !workspace.gathering, report };
  const mounting = !custody
    ? mountKernel(mountpoint, setup)
    : custody.takingOver
      ? custody.takeOver(mountpoint, fs, setup, (error) => report('takeover', error))
      : custody.mount(mountpoint, setup);
  const native = await mounting.catch(async (error: unknown) => {
    fs.close();
    await workspace.close();
    throw error;
  });
  return { workspace, fs, native, readOnly };
}

/** Creates the mountpoint, clears a dead FUSE mount left by a crashed server, refuses a live one. */
async function prepareMountpoint(mountpoint: string): Promise<void> {
  await detachDeadFuseMount(mountpoint);
  await mkdir(mountpoint, { recursive: true });
  const existing = await mountAt(mountpoint);
  if (existing) throw new MountpointBusyError(`${mountpoint} is already a mountpoint (${existing.fstype})`);
}
