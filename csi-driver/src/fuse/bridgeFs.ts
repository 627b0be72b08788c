import type { FuseStat, FuseStatfs } from './attributes.js';
import type { ProjectWorkspace } from '@lighthouse-bridge/core';
import { E, fsError } from './errno.js';
import { HandleTable, type ContentMirror, type Handle, type KernelCache, type MirrorFactory } from './handles.js';
import { isImmutable, locate, type At, type Location } from './layout.js';
import type { ValidateBackend } from './validation.js';
import type { WriteBudget } from './writeBudget.js';
import { BridgeView } from './views/bridge.js';
import { ContextView } from './views/context.js';
import { CurrentView } from './views/current.js';
import { HistoryView } from './views/history.js';
import { ShadowsView } from './views/shadows.js';
import { Stats } from './views/stats.js';
import { StreamsView } from './views/streams.js';
import { MISSING, rootView } from './views/root.js';
import { bound, then, type Result, type Routed, type View } from './views/view.js';

const O_ACCMODE = 3;
const O_TRUNC = 0o1000;

/** A new descriptor, with what the kernel may do without asking us (ADR 0080). */
export interface Opened {
  fd: number;
  cache: KernelCache;
  flushes: boolean;
  /** Names the mirror of what it writes, for a successor (custody). */
  mirror?: string | undefined;
}

/** A writer's content mirror a predecessor left, found again by name (custody). */
export interface RestoredMirror {
  mirror: ContentMirror;
  content(): Buffer;
}

export interface BridgeFsOptions {
  workspace: ProjectWorkspace;
  readOnly: boolean;
  mountpoint: string;
  validator?: ValidateBackend | undefined;
  /** Bounds the memory of every file open for writing through this mount, together. */
  writeBudget: WriteBudget;
  /** Mirrors each writer's content outside the process, so a successor can take the mount over (custody). */
  mirrors?: MirrorFactory | undefined;
  /** chmod/utimens of a recorded file return before their append (ADR 0098); false for `--sync close`. */
  deferAttributes?: boolean | undefined;
}

/**
 * The project as a filesystem (README "A quick tour"; layout.ts), independent of FUSE plumbing:
 * each path goes to the view owning its part of the tree (views/), each descriptor to its handle.
 * Methods answer one operation or throw (FsError / DomainError / store errors, mapped to errno once
 * in kernel/session.ts). Hot paths (getattr, read) stay synchronous where the projection has the answer.
 */
export class BridgeFs {
  readonly workspace: ProjectWorkspace;
  readonly readOnly: boolean;
  private readonly handles = new HandleTable();
  private readonly stats: Stats;
  private readonly root: View<At<'root'>>;
  private readonly current: CurrentView;
  private readonly history: HistoryView;
  private readonly shadows: ShadowsView;
  private readonly context: ContextView;
  private readonly streams: StreamsView;
  private readonly bridge: BridgeView;
  private lastError: string | undefined;
  private closed = false;

  constructor(options: BridgeFsOptions) {
    const { workspace, readOnly, writeBudget: budget } = options;
    this.workspace = workspace;
    this.readOnly = readOnly;
    const stats = (this.stats = new Stats(readOnly));
    this.root = rootView(stats);
    this.current = new CurrentView(workspace, stats, budget, options.mirrors, options.deferAttributes ?? false);
    this.history = new HistoryView(workspace, stats);
    this.shadows = new ShadowsView(workspace, stats, readOnly, budget);
    this.context = new ContextView(workspace, stats);
    this.streams = new StreamsView(workspace, stats);
    const figures = () => ({
      closed: this.closed,
      openHandles: this.handles.size,
      openFiles: this.current.openFileCount,
      streamReaders: this.streams.readerCount,
      lastError: this.lastError,
    });
    this.bridge = new BridgeView(workspace, stats, { mountpoint: options.mountpoint, readOnly, validator: options.validator, budget, figures });
  }

  /** Records every file still dirty in an open handle (unmount of a busy mount); failures are reported, not thrown. */
  commitAll(report: (error: unknown) => void): Promise<void> {
    return this.current.commitAll(report);
  }

  /** Ends blocked stream reads so the FUSE threads can finish before unmount. */
  close(): void {
    this.closed = true;
    this.streams.close();
  }

  noteError(message: string): void {
    this.lastError = message;
  }

  status(): Record<string, unknown> {
    return this.bridge.status();
  }

  getattr(fusePath: string): Result<FuseStat> {
    return this.route(fusePath).getattr();
  }

  /** What a listing may show of `fusePath` without loading anything (READDIRPLUS); undefined when that is nothing. */
  getattrAtHand(fusePath: string): FuseStat | undefined {
    return this.route(fusePath).getattrAtHand();
  }

  readdir(fusePath: string): Result<string[]> {
    return this.route(fusePath).readdir();
  }

  readlink(fusePath: string): Result<string> {
    return this.route(fusePath).readlink();
  }

  statfs(): FuseStatfs {
    return this.stats.statfs(this.workspace);
  }

  open(fusePath: string, flags: number): Result<Opened> {
    const at = locate(fusePath);
    const writing = (flags & O_ACCMODE) !== 0;
    // Asking for a decision changes nothing in the project, so read-only mounts may validate too.
    if (writing && at.view !== 'bridgeValidate') {
      if (this.readOnly) throw fsError(E.EROFS, 'mounted read-only');
      if (isImmutable(at)) throw fsError(at.view === 'missing' ? E.ENOENT : E.EROFS, `${fusePath} is read-only`);
    }
    return then(this.bind(at, fusePath).open(writing, (flags & O_TRUNC) !== 0), (handle) => this.add(handle));
  }

  create(fusePath: string, mode: number): Opened {
    // The kernel creates only what lookup did not find: a shadow of a path the project lacks.
    if (locate(fusePath).view === 'shadows' && !this.readOnly) throw fsError(E.ENOENT, `${fusePath}: no such project path to annotate`);
    return this.add(this.current.create(this.requireCurrent(fusePath), mode));
  }

  private add(handle: Handle): Opened {
    return { fd: this.handles.add(handle), cache: handle.cache, flushes: handle.flushes, mirror: handle.mirror };
  }

  /**
   * Gives out `fd` again for a descriptor a predecessor opened (custody): readers and validate
   * requesters open afresh (never truncating again), writers of current/ get their content back from
   * its mirror. Any other writer has no mirror and is not restored: its descriptor answers EBADF.
   */
  reopen(fd: number, fusePath: string, flags: number, restored: RestoredMirror | undefined): Result<void> {
    const at = locate(fusePath);
    const writing = (flags & O_ACCMODE) !== 0;
    // A validate descriptor keeps no state between request lines: an agent's open one carries on.
    if (!writing || at.view === 'bridgeValidate') return then(this.bind(at, fusePath).open(writing, false), (handle) => this.handles.put(fd, handle));
    if (at.view !== 'current' || !restored || this.readOnly) throw fsError(E.EBADF, `${fusePath}: a writer without a mirror cannot be restored`);
    this.handles.put(fd, this.current.restoreWriter(at.path, restored.mirror, restored.content));
  }

  read(fd: number, target: Buffer, length: number, position: number): Result<number> {
    return this.handles.get(fd).read(target, length, position);
  }

  write(fd: number, source: Buffer, length: number, position: number): number {
    return this.handles.get(fd).write(source, length, position);
  }

  /** close(2): synchronous when there is nothing to record, which is every close of a reader (the hot path). */
  flush(fd: number): Result<void> {
    return this.handles.get(fd).flush();
  }

  /** fsync(2): the handle's own changes recorded, then everything recorded before made durable. */
  fsync(fd: number): Promise<void> {
    return Promise.resolve(this.handles.get(fd).fsync()).then(() => this.workspace.sync());
  }

  /** fsync(2) of a directory: every change recorded before it (a create, rename, unlink in it) made durable. */
  fsyncdir(): Promise<void> {
    return this.workspace.sync();
  }

  release(fd: number): Result<void> {
    return this.handles.remove(fd)?.release();
  }

  ftruncate(fd: number, size: number): void {
    this.handles.get(fd).truncate(size);
  }

  /** stat of a file unlinked or replaced while open, kept under `key` by unlink/rename. */
  getattrKept(key: string): FuseStat {
    return this.current.getattrKept(key);
  }

  /** The last descriptor of a kept file is gone. */
  dropKept(key: string): void {
    this.current.dropKept(key);
  }

  truncate(fusePath: string, size: number): Promise<void> {
    if (locate(fusePath).view === 'shadows' && !this.readOnly) return Promise.resolve(); // O_TRUNC before a shadow write
    return this.current.truncate(this.requireCurrent(fusePath), size);
  }

  /** `keepAs`: descriptors are still open on it; fstat through them keeps answering (getattrKept). */
  unlink(fusePath: string, keepAs?: string): Promise<void> {
    return this.current.unlink(this.requireCurrent(fusePath), keepAs);
  }

  /** `replacedAs`: what `toPath` named is open; kept as unlink's `keepAs` is. */
  async rename(fromPath: string, toPath: string, replacedAs?: string): Promise<void> {
    const fromAt = locate(fromPath);
    const toAt = locate(toPath);
    if (fromAt.view !== 'current' || toAt.view !== 'current') {
      const readOnly = this.readOnly || isImmutable(fromAt) || isImmutable(toAt);
      throw fsError(readOnly ? E.EROFS : E.EXDEV, `cannot rename ${fromPath} to ${toPath}`);
    }
    if (this.readOnly) throw fsError(E.EROFS, 'mounted read-only');
    await this.current.rename(fromAt.path, toAt.path, replacedAs);
  }

  mkdir(fusePath: string, mode: number): Promise<void> {
    return this.current.mkdir(this.requireCurrent(fusePath), mode);
  }

  rmdir(fusePath: string): Promise<void> {
    return this.current.rmdir(this.requireCurrent(fusePath));
  }

  symlink(target: string, fusePath: string): Promise<void> {
    return this.current.symlink(target, this.requireCurrent(fusePath));
  }

  chmod(fusePath: string, mode: number): Promise<void> {
    return this.current.chmod(this.requireCurrent(fusePath), mode);
  }

  /** Ownership is not modelled (every entry belongs to the mounting user); accepted so cp -a/tar/rsync succeed. */
  chown(fusePath: string): void {
    this.requireCurrent(fusePath);
  }

  utimens(fusePath: string, mtimeMs: number): Promise<void> {
    return this.current.utimens(this.requireCurrent(fusePath), mtimeMs);
  }

  /** The project path of a change in current/, or EROFS for every other view and read-only mounts. */
  private requireCurrent(fusePath: string): string {
    const at = locate(fusePath);
    if (at.view !== 'current' || this.readOnly) throw fsError(E.EROFS, `${fusePath} is read-only`);
    return at.path;
  }

  private route(fusePath: string): Routed {
    return this.bind(locate(fusePath), fusePath);
  }

  /** The one switch on the layout: which view answers for `at`. */
  private bind(at: Location, fusePath: string): Routed {
    switch (at.view) {
      case 'root':
        return bound(this.root, at, fusePath);
      case 'current':
        return bound(this.current, at, fusePath);
      case 'historyDir':
      case 'historyLog':
      case 'history':
        return bound(this.history, at, fusePath);
      case 'shadows':
        return bound(this.shadows, at, fusePath);
      case 'context':
        return bound(this.context, at, fusePath);
      case 'streamsDir':
      case 'streamEvents':
        return bound(this.streams, at, fusePath);
      case 'bridgeDir':
      case 'bridgeStatus':
      case 'bridgeValidate':
        return bound(this.bridge, at, fusePath);
      case 'missing':
        return bound(MISSING, at, fusePath);
    }
  }
}
