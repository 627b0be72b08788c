import type { FuseStat } from '../attributes.js';
import { contentHash, nameOf, normalizePath, parentOf, storedMode, type ProjectWorkspace, type TreeNode } from '@lighthouse-bridge/core';
import { E, fsError } from '../errno.js';
import { OpenFile, type ContentMirror, type Handle, type MirrorFactory } from '../handles.js';
import type { At } from '../layout.js';
import { PageCacheRecord } from '../pageCacheRecord.js';
import type { WriteBudget } from '../writeBudget.js';
import type { Stats } from './stats.js';
import { openBlob, requireDirectory, requireNode, requireSymlinkTarget, type Result, type View } from './view.js';

/** The name kernel/session.ts renames an unlinked-but-open file to (libfuse's scheme), and unlinks at its release. */
const FUSE_HIDDEN = /^\.fuse_hidden[0-9a-f]{16}$/;

/**
 * `current/`: the project's head, the one writable tree. A file open for writing is buffered whole
 * (an OpenFile shared by its handles) and recorded as one event when a writer closes it.
 * Namespace changes take project paths: the dispatcher has refused the other views already.
 */
export class CurrentView implements View<At<'current'>> {
  /** Files with at least one open handle, by project path. */
  private readonly openFiles = new Map<string, OpenFile>();
  /**
   * Files unlinked or replaced while open, by the key the session keeps them under: never in the
   * project (the unlink was recorded as a Delete), stat answered for the descriptors still using
   * them. A file open for writing stays itself; one only readers had is its stat at that moment.
   */
  private readonly kept = new Map<string, OpenFile | FuseStat>();
  private readonly pageCache = new PageCacheRecord();

  constructor(
    private readonly workspace: ProjectWorkspace,
    private readonly stats: Stats,
    private readonly budget: WriteBudget,
    private readonly mirrors?: MirrorFactory,
    /** chmod/utimens of a recorded file return before their append (ADR 0098); `--sync close` waits. */
    private readonly deferAttributes = false,
  ) {}

  get openFileCount(): number {
    return this.openFiles.size;
  }

  getattr({ path }: At<'current'>): FuseStat {
    const open = this.openFiles.get(path);
    if (open) return this.fileStat(open);
    return this.nodeStat(path, requireNode(this.workspace.state, path));
  }

  /**
   * A recorded node as this mount shows it: with the attribute changes still queued for it (ADR
   * 0098). Whatever starts from a recorded file (stat, an open for writing, a truncate) starts
   * here, or its record would carry the old mode behind the queued chmod and undo it.
   */
  private shown<N extends TreeNode>(path: string, node: N): N {
    const behind = this.workspace.attributesBehind(path);
    if (!behind) return node;
    const shown = { ...node, mtimeMs: behind.mtimeMs ?? node.mtimeMs, ctimeMs: behind.ctimeMs };
    if (shown.kind !== 'symlink' && behind.mode !== undefined) shown.mode = behind.mode;
    return shown;
  }

  private nodeStat(path: string, node: TreeNode): FuseStat {
    return this.stats.node(this.shown(path, node), false);
  }

  /** stat of a file unlinked while open (fstat on a descriptor the session still serves). */
  getattrKept(key: string): FuseStat {
    const kept = this.kept.get(key);
    if (!kept) throw fsError(E.ENOENT, 'unlinked');
    return kept instanceof OpenFile ? this.fileStat(kept) : kept;
  }

  /** Its last descriptor is gone. */
  dropKept(key: string): void {
    this.kept.delete(key);
  }

  private fileStat(open: OpenFile): FuseStat {
    return this.stats.file(open.mode, open.size, open.mtimeMs ?? open.lastWriteMs, open.lastWriteMs);
  }

  readdir({ path }: At<'current'>): string[] {
    const names = [...requireDirectory(this.workspace.state, path).children];
    // Files created through this mount and not yet closed exist for the processes using them.
    for (const file of this.openFiles.values()) {
      if (file.pending && parentOf(file.path) === path) names.push(nameOf(file.path));
    }
    return names;
  }

  readlink({ path }: At<'current'>): string {
    return requireSymlinkTarget(this.workspace.state, path);
  }

  open({ path }: At<'current'>, writing: boolean, truncating: boolean): Result<Handle> {
    if (writing) this.pageCache.forget(path);
    const open = this.openFiles.get(path);
    if (open) return this.handle(open, writing);
    const node = requireNode(this.workspace.state, path);
    if (node.kind === 'directory') throw fsError(E.EISDIR, `${path} is a directory`);
    if (node.kind !== 'file') throw fsError(E.EINVAL, `${path} is not a regular file`);
    if (!writing) return openBlob(this.workspace, node, path, this.pageCache.readerOpen(path, node.hash));
    // O_TRUNC is followed by ftruncate(0): no need to fetch content about to be dropped.
    const content = truncating ? Promise.resolve(Buffer.alloc(0)) : this.workspace.readBlob(node.hash);
    return content.then((data) => {
      // Another open may have raced us while the blob loaded; share its copy.
      let file = this.openFiles.get(path);
      if (!file) {
        const recorded = this.shown(path, node);
        file = new OpenFile(path, Buffer.from(data), recorded.mode, false, this.budget);
        file.mirror = this.mirrors?.(data);
        // Until a write, stat shows the recorded mtime, not the time of the open.
        file.lastWriteMs = recorded.mtimeMs;
        this.openFiles.set(path, file);
      }
      return this.handle(file, true);
    });
  }

  create(path: string, mode: number): Handle {
    const normalized = normalizePath(path, this.workspace.limits);
    this.pageCache.forget(normalized);
    const existing = this.workspace.state.nodes.get(normalized);
    if (existing?.kind === 'directory') throw fsError(E.EISDIR, `${path} is a directory`);
    this.requireParent(normalized);
    let file = this.openFiles.get(normalized);
    if (!file) {
      file = new OpenFile(normalized, Buffer.alloc(0), storedMode(mode), existing === undefined, this.budget);
      file.mirror = this.mirrors?.(Buffer.alloc(0));
      file.dirty = true;
      this.openFiles.set(normalized, file);
    }
    return this.handle(file, true);
  }

  /**
   * A writer a predecessor served (custody): its content comes back from the mirror, and is
   * recorded at its close unless the project already holds exactly these bytes.
   */
  restoreWriter(path: string, mirror: ContentMirror, content: () => Buffer): Handle {
    let file = this.openFiles.get(path);
    if (file && file.mirror === mirror) return this.handle(file, true);
    const node = this.workspace.state.nodes.get(path);
    const recorded = node?.kind === 'file' ? this.shown(path, node) : undefined;
    const data = content();
    file = new OpenFile(path, data, recorded?.mode ?? 0o644, node === undefined, this.budget);
    file.mirror = mirror;
    file.dirty = recorded?.hash !== contentHash(data);
    if (recorded && !file.dirty) file.lastWriteMs = recorded.mtimeMs;
    this.openFiles.set(path, file);
    return this.handle(file, true);
  }

  /** truncate(2) by path, with no descriptor to close afterwards: recorded now. */
  async truncate(path: string, size: number): Promise<void> {
    this.pageCache.forget(path);
    const open = this.openFiles.get(path);
    if (open) {
      // truncate(2) by path beside an open handle: the handle's close records it.
      open.truncate(size, this.workspace.limits.maxFileBytes);
      return;
    }
    const node = requireNode(this.workspace.state, path);
    if (node.kind === 'directory') throw fsError(E.EISDIR, `${path} is a directory`);
    if (node.kind !== 'file') throw fsError(E.EINVAL, `${path} is not a regular file`);
    const content = Buffer.from(await this.workspace.readBlob(node.hash));
    const file = new OpenFile(path, content, this.shown(path, node).mode, false, this.budget);
    try {
      file.truncate(size, this.workspace.limits.maxFileBytes);
      await this.commit(file);
    } finally {
      file.dispose();
    }
  }

  /** `keepAs`: the file is still open; its stat stays answerable under that key until dropKept. */
  async unlink(path: string, keepAs?: string): Promise<void> {
    this.pageCache.forget(path);
    const open = this.openFiles.get(path);
    const leaveBehind = this.keepWhenGone(path, keepAs);
    // A file created and still open was never recorded: there is nothing to delete.
    if (!open || this.workspace.state.nodes.has(path)) await this.workspace.execute({ type: 'Delete', path });
    leaveBehind();
  }

  /** `replacedAs`: what `toPath` named is still open; kept under that key as unlink's `keepAs` is. */
  async rename(from: string, toPath: string, replacedAs?: string): Promise<void> {
    const to = normalizePath(toPath, this.workspace.limits);
    if (this.workspace.state.nodes.get(from)?.kind === 'directory') this.pageCache.forgetAll();
    this.pageCache.forget(from);
    this.pageCache.forget(to);
    const source = this.openFiles.get(from);
    // A file created and still open is not in the projection yet: record it so the move is valid.
    if (source?.pending) await this.commit(source);
    const leaveBehind = this.keepWhenGone(to, replacedAs, source);
    await this.workspace.execute({ type: 'Move', from, to });
    leaveBehind();
    const prefix = `${from}/`;
    for (const [path, file] of [...this.openFiles]) {
      if (path !== from && !path.startsWith(prefix)) continue;
      this.openFiles.delete(path);
      file.path = to + path.slice(from.length);
      this.openFiles.set(file.path, file);
    }
  }

  async mkdir(path: string, mode: number): Promise<void> {
    await this.workspace.execute({ type: 'MakeDirectory', path, mode: storedMode(mode) });
  }

  async rmdir(path: string): Promise<void> {
    await this.workspace.execute({ type: 'RemoveDirectory', path });
  }

  async symlink(target: string, path: string): Promise<void> {
    await this.workspace.execute({ type: 'CreateSymlink', path, target });
  }

  async chmod(path: string, mode: number): Promise<void> {
    const open = this.openFiles.get(path);
    if (open) open.mode = storedMode(mode);
    // Not recorded yet (new, or written since its last record): the mode travels with the content.
    if (open?.pending || open?.dirty) return;
    await this.changeAttributes(path, { mode: storedMode(mode) });
  }

  async utimens(path: string, mtimeMs: number): Promise<void> {
    const open = this.openFiles.get(path);
    if (open?.dirty) {
      open.mtimeMs = mtimeMs;
      return;
    }
    // A writer that has not written shows the recorded mtime until it writes: this one, now.
    if (open) open.lastWriteMs = mtimeMs;
    await this.changeAttributes(path, { mtimeMs });
  }

  private async changeAttributes(path: string, change: { mode?: number; mtimeMs?: number }): Promise<void> {
    if (this.deferAttributes) this.workspace.changeAttributesBehind(path, change);
    else await this.workspace.execute({ type: 'ChangeAttributes', path, ...change });
  }

  /** Records every file still dirty in an open handle (unmount of a busy mount); failures are reported, not thrown. */
  async commitAll(report: (error: unknown) => void): Promise<void> {
    for (const file of [...this.openFiles.values()]) {
      await this.commit(file).catch(report);
    }
  }

  private handle(file: OpenFile, writable: boolean): Handle {
    file.refs++;
    return new FileHandle(file, writable, this);
  }

  async commit(file: OpenFile): Promise<void> {
    await file.commit(async (f, content, mtimeMs) => {
      await this.workspace.writeFile(f.path, content, { mode: f.mode, mtimeMs });
    });
  }

  /** The last handle of `file` is gone: its buffer goes back to the budget. */
  forget(file: OpenFile): void {
    if (file.refs !== 0) return;
    if (this.openFiles.get(file.path) === file) this.openFiles.delete(file.path);
    file.dispose();
  }

  get maxFileBytes(): number {
    return this.workspace.limits.maxFileBytes;
  }

  /**
   * Looked at before `path` goes (unlinked, or replaced by `except` moving there); the result, run
   * after, leaves under `keepAs` what the descriptors still open on it answer fstat with.
   */
  private keepWhenGone(path: string, keepAs: string | undefined, except?: OpenFile): () => void {
    const open = this.openFiles.get(path);
    if (open) return open === except ? () => {} : () => this.detach(path, open, keepAs);
    const node = keepAs === undefined ? undefined : this.workspace.state.nodes.get(path);
    if (node?.kind !== 'file') return () => {};
    // Only readers have it open: its stat as it is now, before the change removes it.
    const stat = this.nodeStat(path, node);
    return () => this.kept.set(keepAs!, stat);
  }

  /** Later writes through the file's handles go nowhere, as on a POSIX filesystem. */
  private detach(path: string, file: OpenFile, keepAs?: string): void {
    file.detached = true;
    if (this.openFiles.get(path) === file) this.openFiles.delete(path);
    if (keepAs !== undefined) this.kept.set(keepAs, file);
  }

  private requireParent(path: string): void {
    const parent = parentOf(path) ?? '';
    const node = this.workspace.state.nodes.get(parent);
    if (!node) throw fsError(E.ENOENT, `directory ${parent} does not exist`);
    if (node.kind !== 'directory') throw fsError(E.ENOTDIR, `${parent} is not a directory`);
  }
}

/** A descriptor of a file in current/: reads and writes the shared OpenFile, records it on close. */
class FileHandle implements Handle {
  readonly cache = 'page';
  readonly flushes: boolean;
  readonly mirror: string | undefined;

  constructor(
    private readonly file: OpenFile,
    private readonly writable: boolean,
    private readonly view: CurrentView,
  ) {
    // A reader's close records nothing (see flush).
    this.flushes = writable;
    this.mirror = writable ? file.mirror?.name : undefined;
  }

  read(target: Buffer, length: number, position: number): number {
    return this.file.read(target, length, position);
  }

  write(source: Buffer, length: number, position: number): number {
    this.requireWritable();
    return this.file.write(source, length, position, this.view.maxFileBytes);
  }

  truncate(size: number): void {
    this.requireWritable();
    this.file.truncate(size, this.view.maxFileBytes);
  }

  flush(): Result<void> {
    // A reader's close must not record another handle's half-written content.
    if (!this.writable) return;
    // Every changed file is durable when close returns, an empty one too (ADR 0041): the kernel
    // sends release after close has returned, so release cannot be where a close is made durable.
    // Clean, this waits for another handle's in-flight commit, so close never returns before it is durable.
    return this.view.commit(this.file);
  }

  /** Even an empty file is recorded now. */
  fsync(): Promise<void> {
    return this.view.commit(this.file);
  }

  release(): Result<void> {
    this.file.refs--;
    const forget = (): void => this.view.forget(this.file);
    // Flush recorded it already unless a write raced the close (mmap, another thread).
    if (!this.writable || !this.file.dirty) return forget();
    return this.view.commit(this.file).finally(forget);
  }

  private requireWritable(): void {
    if (!this.writable) throw fsError(E.EBADF, 'handle is open for reading only');
  }
}
