import type { FuseStat, FuseStatfs } from 'fuse-native';
import { formatProjectId, type ProjectState, type RecordedEvent, type TreeNode } from '@lighthouse-bridge/core';
import type { ProjectWorkspace } from '@lighthouse-bridge/core/commandHandling/workspace';
import { normalizePath } from '@lighthouse-bridge/core/aggregate/paths';
import { STORED_MODE_BITS, storedMode } from '@lighthouse-bridge/core/aggregate/modes';
import { MAX_REQUEST_BYTES } from '@lighthouse-bridge/core/speed-layer/index';
import { E, fsError } from './errno.js';
import { HandleTable, OpenFile, type Handle } from './handles.js';
import type { WriteBudget } from './writeBudget.js';
import { BRIDGE_ENTRIES, HISTORY_LOG, ROOT_ENTRIES, STREAM_ENTRIES, isImmutable, locate, type HistoryRef, type Location } from './layout.js';
import { renderJson, renderLogLine } from './renderers.js';
import { validateAnswers, type ValidateBackend } from './validation.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const O_ACCMODE = 3;
const O_TRUNC = 0o1000;
/** The stored bits (no setuid/setgid) without any write bit. */
const READ_ONLY_BITS = STORED_MODE_BITS & ~0o222;
/** A blocked read of streams/events answers at least this often (see ADR 0041). */
const HEARTBEAT_MS = 1000;
/** history/ lists this many of the newest @<seq> views; any older one still resolves by name. */
const LISTED_HISTORY_VIEWS = 1000;
const LOG_PAGE = 1000;
/** History views kept resolved in memory (each is a whole tree, so the bound is a count). */
const READY_VIEWS = 8;
/**
 * Event lines queued for one streams/events reader that is not reading. Past this the backlog is
 * dropped for one overflow line: the reader catches up from history/log, memory stays bounded.
 */
const MAX_STREAM_BACKLOG = 1024 * 1024;
/** The name libfuse 2 renames an unlinked-but-open file to, and unlinks at its release. */
const FUSE_HIDDEN = /^\.fuse_hidden[0-9a-f]{16}$/;

export interface BridgeFsOptions {
  workspace: ProjectWorkspace;
  readOnly: boolean;
  mountpoint: string;
  validator?: ValidateBackend | undefined;
  /** Bounds the memory of every file open for writing through this mount, together. */
  writeBudget: WriteBudget;
}

type Result<T> = T | Promise<T>;
type Stream = Extract<Handle, { kind: 'stream' }>;

/**
 * The project as a filesystem (DESIGN §4), independent of FUSE plumbing: each method answers one
 * operation for a FUSE path or throws (FsError / DomainError / store errors, mapped to errno once in
 * fuseOps.ts). Hot paths (getattr, read) stay synchronous where the projection has the answer.
 */
export class BridgeFs {
  readonly workspace: ProjectWorkspace;
  readonly readOnly: boolean;
  private readonly mountpoint: string;
  private readonly validator: ValidateBackend | undefined;
  private readonly budget: WriteBudget;
  private readonly handles = new HandleTable();
  /** Files in current/ with at least one open handle, by project path. */
  private readonly openFiles = new Map<string, OpenFile>();
  /**
   * Files unlinked while open, by libfuse's hidden path: private to this mount, never in the
   * project (the unlink was recorded as a Delete), answered only for the handles still using them.
   */
  private readonly hidden = new Map<string, OpenFile>();
  private readonly streams = new Set<Stream>();
  private readonly timeViews = new Map<string, number>();
  private readonly readyViews = new Map<number, ProjectState>();
  private readonly uid = process.getuid?.() ?? 0;
  private readonly gid = process.getgid?.() ?? 0;
  private readonly mountedAtMs = Date.now();
  private readonly stopEvents: () => void;
  private lastError: string | undefined;
  private closed = false;

  constructor(options: BridgeFsOptions) {
    this.workspace = options.workspace;
    this.readOnly = options.readOnly;
    this.mountpoint = options.mountpoint;
    this.validator = options.validator;
    this.budget = options.writeBudget;
    this.stopEvents = this.workspace.onEvents((events) => this.feedStreams(events));
  }

  /** Records every file still dirty in an open handle (unmount of a busy mount); failures are reported, not thrown. */
  async commitAll(report: (error: unknown) => void): Promise<void> {
    for (const file of [...this.openFiles.values()]) {
      await this.commit(file).catch(report);
    }
  }

  /** Ends blocked stream reads so the FUSE threads can finish before unmount. */
  close(): void {
    this.closed = true;
    this.stopEvents();
    for (const stream of this.streams) this.wake(stream);
  }

  noteError(message: string): void {
    this.lastError = message;
  }

  // ---- attributes and directories -------------------------------------------------------------

  getattr(fusePath: string): Result<FuseStat> {
    const at = locate(fusePath);
    switch (at.view) {
      case 'current': {
        const open = this.openFiles.get(at.path) ?? this.hidden.get(at.path);
        if (open) return this.fileStat(open.mode, open.size, open.mtimeMs ?? open.lastWriteMs, open.lastWriteMs);
        return this.nodeStat(this.requireNode(this.workspace.state, at.path), false);
      }
      case 'history':
        return then(this.stateFor(at.at), (state) => this.nodeStat(this.requireNode(state, at.path), true));
      case 'shadows':
        return this.shadowStat(at.path);
      case 'context':
        return this.contextStat(at.path);
      case 'root':
      case 'historyDir':
      case 'streamsDir':
      case 'bridgeDir':
        return this.dirStat(0o555);
      case 'historyLog':
      case 'bridgeStatus':
      case 'streamEvents':
        return this.fileStat(0o444, 0, Date.now(), this.mountedAtMs);
      case 'bridgeValidate':
        return this.fileStat(0o666, 0, this.mountedAtMs, this.mountedAtMs);
      case 'missing':
        throw fsError(E.ENOENT, `${fusePath} does not exist`);
    }
  }

  readdir(fusePath: string): Result<string[]> {
    const at = locate(fusePath);
    switch (at.view) {
      case 'root':
        return [...ROOT_ENTRIES];
      case 'current':
        return this.currentChildren(at.path);
      case 'history':
        return then(this.stateFor(at.at), (state) => [...this.requireDirectory(state, at.path).children]);
      case 'historyDir': {
        const head = this.workspace.head;
        const names = [HISTORY_LOG];
        for (let seq = Math.max(1, head - LISTED_HISTORY_VIEWS + 1); seq <= head; seq++) names.push(`@${seq}`);
        return names;
      }
      case 'shadows': {
        const dir = this.requireDirectory(this.workspace.state, at.path);
        const names: string[] = [];
        for (const name of dir.children) {
          const child = this.workspace.state.nodes.get(at.path === '' ? name : `${at.path}/${name}`);
          names.push(child?.kind === 'directory' ? name : `${name}.json`);
        }
        return names;
      }
      case 'context':
        return this.contextChildren(at.path);
      case 'streamsDir':
        return [...STREAM_ENTRIES];
      case 'bridgeDir':
        return [...BRIDGE_ENTRIES];
      default:
        throw fsError(at.view === 'missing' ? E.ENOENT : E.ENOTDIR, `${fusePath} is not a directory`);
    }
  }

  readlink(fusePath: string): Result<string> {
    const at = locate(fusePath);
    const read = (state: ProjectState, path: string): string => {
      const node = this.requireNode(state, path);
      if (node.kind !== 'symlink') throw fsError(E.EINVAL, `${fusePath} is not a symlink`);
      return node.target;
    };
    if (at.view === 'current') return read(this.workspace.state, at.path);
    if (at.view === 'history') return then(this.stateFor(at.at), (state) => read(state, at.path));
    throw fsError(E.EINVAL, `${fusePath} is not a symlink`);
  }

  statfs(): FuseStatfs {
    const { limits, state } = this.workspace;
    const bsize = 4096;
    const blocks = Math.ceil(limits.maxProjectBytes / bsize);
    const free = Math.max(0, Math.floor((limits.maxProjectBytes - state.totalBytes) / bsize));
    const files = limits.maxFiles;
    const ffree = Math.max(0, limits.maxFiles - (state.nodes.size - 1));
    return {
      bsize,
      frsize: bsize,
      blocks,
      bfree: free,
      bavail: this.readOnly ? 0 : free,
      files,
      ffree,
      favail: this.readOnly ? 0 : ffree,
      fsid: 0,
      flag: this.readOnly ? 1 : 0,
      namemax: limits.maxNameBytes,
    };
  }

  // ---- open, read, write, close ----------------------------------------------------------------

  open(fusePath: string, flags: number): Result<number> {
    const at = locate(fusePath);
    const writing = (flags & O_ACCMODE) !== 0;
    if (writing) this.requireWritable(at, fusePath);
    switch (at.view) {
      case 'current':
        return this.openCurrent(at.path, writing, (flags & O_TRUNC) !== 0);
      case 'history':
        return then(this.stateFor(at.at), (state) => this.openBlob(this.requireNode(state, at.path), fusePath));
      case 'historyLog':
        return this.renderLog().then((data) => this.handles.add({ kind: 'bytes', data }));
      case 'shadows': {
        const target = this.shadowTarget(at.path);
        if (target === undefined) throw fsError(E.ENOENT, `${fusePath} does not exist`);
        if (target === '') throw fsError(E.EISDIR, `${fusePath} is a directory`);
        if (writing) return this.handles.add({ kind: 'shadow', path: target, request: new OpenFile(target, Buffer.alloc(0), 0o644, false, this.budget) });
        return this.handles.add({ kind: 'bytes', data: this.renderShadow(target) });
      }
      case 'context': {
        const entry = this.contextEntry(at.path);
        if (entry.kind === 'manifest') return this.handles.add({ kind: 'bytes', data: renderJson(entry.manifest) });
        if (entry.kind === 'file') return this.workspace.readBlob(entry.hash).then((data) => this.handles.add({ kind: 'bytes', data }));
        throw fsError(E.EISDIR, `${fusePath} is a directory`);
      }
      case 'streamEvents': {
        const stream: Stream = { kind: 'stream', pending: [], pendingBytes: 0, waiter: undefined, closed: false };
        this.streams.add(stream);
        return this.handles.add(stream);
      }
      case 'bridgeStatus':
        return this.handles.add({ kind: 'bytes', data: renderJson(this.status()) });
      case 'bridgeValidate':
        return this.handles.add({ kind: 'validate', request: [], requestBytes: 0, answer: undefined, answerOffset: 0 });
      case 'missing':
        throw fsError(E.ENOENT, `${fusePath} does not exist`);
      default:
        throw fsError(E.EISDIR, `${fusePath} is a directory`);
    }
  }

  create(fusePath: string, mode: number): Result<number> {
    // The kernel creates only what lookup did not find: a shadow of a path the project lacks.
    if (locate(fusePath).view === 'shadows' && !this.readOnly) throw fsError(E.ENOENT, `${fusePath}: no such project path to annotate`);
    const path = this.requireCurrent(fusePath);
    const normalized = normalizePath(path, this.workspace.limits);
    const existing = this.workspace.state.nodes.get(normalized);
    if (existing?.kind === 'directory') throw fsError(E.EISDIR, `${fusePath} is a directory`);
    this.requireParent(normalized);
    let file = this.openFiles.get(normalized);
    if (!file) {
      file = new OpenFile(normalized, Buffer.alloc(0), storedMode(mode), existing === undefined, this.budget);
      file.dirty = true;
      this.openFiles.set(normalized, file);
    }
    file.refs++;
    return this.handles.add({ kind: 'file', file, writable: true });
  }

  read(fd: number, target: Buffer, length: number, position: number): Result<number> {
    const handle = this.handles.get(fd);
    switch (handle.kind) {
      case 'file':
        return handle.file.read(target, length, position);
      case 'bytes':
      case 'shadow': {
        const data = handle.kind === 'bytes' ? handle.data : this.renderShadow(handle.path);
        if (position >= data.length) return 0;
        return data.copy(target, 0, position, Math.min(data.length, position + length));
      }
      case 'stream':
        return this.readStream(handle, target, length);
      case 'validate':
        return this.readValidate(handle, target, length);
    }
  }

  write(fd: number, source: Buffer, length: number, position: number): number {
    const handle = this.handles.get(fd);
    switch (handle.kind) {
      case 'file':
        if (!handle.writable) throw fsError(E.EBADF, 'handle is open for reading only');
        return handle.file.write(source, length, position, this.workspace.limits.maxFileBytes);
      case 'shadow':
        return handle.request.write(source, length, position, this.maxShadowRequestBytes());
      case 'validate':
        if (handle.answer !== undefined) {
          handle.answer = undefined;
          handle.answerOffset = 0;
          clearRequest(handle);
        }
        // The request is held in memory until read back: the speed layer's own limit bounds it.
        if (handle.requestBytes + length > MAX_REQUEST_BYTES) throw fsError(E.EFBIG, `a validate request is at most ${MAX_REQUEST_BYTES} bytes`);
        handle.request.push(Buffer.from(source.subarray(0, length)));
        handle.requestBytes += length;
        return length;
      default:
        throw fsError(E.EBADF, 'handle is open for reading only');
    }
  }

  /**
   * close(2) of one descriptor: records the file (one event) and resolves once it is durable.
   * Synchronous when there is nothing to record, which is every close of a reader (the hot path).
   */
  flush(fd: number): Result<void> {
    const handle = this.handles.get(fd);
    if (handle.kind === 'file') {
      // A reader's close must not record another handle's half-written content.
      if (!handle.writable) return;
      // Every changed file is durable when close returns, an empty one too (ADR 0041): the kernel
      // sends release after close has returned, so release cannot be where a close is made durable.
      // Clean, this waits for another handle's in-flight commit, so close never returns before it is durable.
      return this.commit(handle.file);
    }
    if (handle.kind === 'shadow' && handle.request.dirty) return this.annotate(handle);
  }

  /** fsync(2): an explicit request for durability, so even an empty file is recorded now. */
  fsync(fd: number): Result<void> {
    const handle = this.handles.get(fd);
    if (handle.kind === 'file') return this.commit(handle.file);
    if (handle.kind === 'shadow' && handle.request.dirty) return this.annotate(handle);
  }

  release(fd: number): Result<void> {
    const handle = this.handles.remove(fd);
    if (handle?.kind === 'stream') {
      handle.closed = true;
      this.streams.delete(handle);
      this.wake(handle);
    } else if (handle?.kind === 'shadow') {
      handle.request.dispose();
    } else if (handle?.kind === 'file') {
      const { file } = handle;
      file.refs--;
      const forget = (): void => {
        if (file.refs !== 0) return;
        if (this.openFiles.get(file.path) === file) this.openFiles.delete(file.path);
        file.dispose();
      };
      // Flush recorded it already unless a write raced the close (mmap, another thread).
      if (!handle.writable || !file.dirty) return forget();
      return this.commit(file).finally(forget);
    }
  }

  ftruncate(fd: number, size: number): void {
    const handle = this.handles.get(fd);
    if (handle.kind === 'file' && handle.writable) return handle.file.truncate(size, this.workspace.limits.maxFileBytes);
    if (handle.kind === 'shadow') return handle.request.truncate(size, this.maxShadowRequestBytes());
    if (handle.kind === 'validate') return clearRequest(handle);
    throw fsError(E.EBADF, 'handle is open for reading only');
  }

  /** truncate(2) by path, with no descriptor to close afterwards: recorded now. */
  async truncate(fusePath: string, size: number): Promise<void> {
    if (locate(fusePath).view === 'shadows' && !this.readOnly) return; // O_TRUNC before a shadow write
    const path = this.requireCurrent(fusePath);
    const open = this.openFiles.get(path);
    if (open) {
      // libfuse 2 sends open(O_TRUNC)'s truncate by path: the handle's close records it.
      open.truncate(size, this.workspace.limits.maxFileBytes);
      return;
    }
    const node = this.requireNode(this.workspace.state, path);
    if (node.kind === 'directory') throw fsError(E.EISDIR, `${fusePath} is a directory`);
    if (node.kind !== 'file') throw fsError(E.EINVAL, `${fusePath} is not a regular file`);
    const file = new OpenFile(path, Buffer.from(await this.workspace.readBlob(node.hash)), node.mode, false, this.budget);
    try {
      file.truncate(size, this.workspace.limits.maxFileBytes);
      await this.commit(file);
    } finally {
      file.dispose();
    }
  }

  // ---- namespace changes -----------------------------------------------------------------------

  async unlink(fusePath: string): Promise<void> {
    const path = this.requireCurrent(fusePath);
    // libfuse 2 unlinks the hidden name at the last release; the Delete was recorded at the rename.
    if (this.hidden.delete(path)) return;
    const open = this.openFiles.get(path);
    // A file created and still open was never recorded: there is nothing to delete.
    if (!open || this.workspace.state.nodes.has(path)) await this.workspace.execute({ type: 'Delete', path });
    if (open) this.detach(path, open);
  }

  async rename(fromPath: string, toPath: string): Promise<void> {
    const fromAt = locate(fromPath);
    const toAt = locate(toPath);
    if (fromAt.view !== 'current' || toAt.view !== 'current') {
      const readOnly = this.readOnly || isImmutable(fromAt) || isImmutable(toAt);
      throw fsError(readOnly ? E.EROFS : E.EXDEV, `cannot rename ${fromPath} to ${toPath}`);
    }
    if (this.readOnly) throw fsError(E.EROFS, 'mounted read-only');
    const from = fromAt.path;
    const to = normalizePath(toAt.path, this.workspace.limits);
    if (FUSE_HIDDEN.test(to.slice(to.lastIndexOf('/') + 1))) return this.hide(from, to);
    const source = this.openFiles.get(from);
    // A file created and still open is not in the projection yet: record it so the move is valid.
    if (source?.pending) await this.commit(source);
    await this.workspace.execute({ type: 'Move', from, to });
    const replaced = this.openFiles.get(to);
    if (replaced && replaced !== source) this.detach(to, replaced);
    const prefix = `${from}/`;
    for (const [path, file] of [...this.openFiles]) {
      if (path !== from && !path.startsWith(prefix)) continue;
      this.openFiles.delete(path);
      file.path = to + path.slice(from.length);
      this.openFiles.set(file.path, file);
    }
  }

  async mkdir(fusePath: string, mode: number): Promise<void> {
    await this.workspace.execute({ type: 'MakeDirectory', path: this.requireCurrent(fusePath), mode: storedMode(mode) });
  }

  async rmdir(fusePath: string): Promise<void> {
    await this.workspace.execute({ type: 'RemoveDirectory', path: this.requireCurrent(fusePath) });
  }

  async symlink(target: string, fusePath: string): Promise<void> {
    await this.workspace.execute({ type: 'CreateSymlink', path: this.requireCurrent(fusePath), target });
  }

  async chmod(fusePath: string, mode: number): Promise<void> {
    const path = this.requireCurrent(fusePath);
    const open = this.openFiles.get(path);
    if (open) open.mode = storedMode(mode);
    if (open?.pending) return;
    await this.workspace.execute({ type: 'ChangeAttributes', path, mode: storedMode(mode) });
  }

  /** Ownership is not modelled (every entry belongs to the mounting user); accepted so cp -a/tar/rsync succeed. */
  chown(fusePath: string): void {
    this.requireCurrent(fusePath);
  }

  async utimens(fusePath: string, mtimeMs: number): Promise<void> {
    const path = this.requireCurrent(fusePath);
    const open = this.openFiles.get(path);
    if (open?.dirty) {
      open.mtimeMs = mtimeMs;
      return;
    }
    await this.workspace.execute({ type: 'ChangeAttributes', path, mtimeMs });
  }

  // ---- status ----------------------------------------------------------------------------------

  status(): Record<string, unknown> {
    const ws = this.workspace;
    // Acknowledged events lost in the store: writes are refused (EIO) and the mount is not healthy.
    const logRegression = ws.store.logRegression?.(ws.project);
    return {
      project: formatProjectId(ws.project),
      head: ws.head,
      headTime: ws.state.time || null,
      store: { kind: ws.store.kind, location: ws.store.location, logRegression: logRegression ?? null },
      mountpoint: this.mountpoint,
      readOnly: this.readOnly,
      files: ws.state.fileCount,
      bytes: ws.state.totalBytes,
      limits: ws.limits,
      cache: { blobs: ws.cacheStats },
      mount: {
        healthy: !this.closed && logRegression === undefined,
        uptimeSeconds: Math.round((Date.now() - this.mountedAtMs) / 1000),
        openHandles: this.handles.size,
        openFiles: this.openFiles.size,
        writeBufferBytes: this.budget.usedBytes,
        writeBufferLimit: this.budget.limit,
        streamReaders: this.streams.size,
        lastError: this.lastError ?? null,
      },
      validator: this.validator ? 'configured' : 'none',
    };
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * libfuse 2's stand-in for unlink(2) of an open file (rename to `.fuse_hidden…`): recorded as the
   * Delete it is, so the shared log and history never see a move to a name private to this mount.
   */
  private async hide(from: string, to: string): Promise<void> {
    const source = this.openFiles.get(from);
    if (!source || this.workspace.state.nodes.has(from)) await this.workspace.execute({ type: 'Delete', path: from });
    if (!source) return;
    this.detach(from, source);
    this.hidden.set(to, source);
  }

  /** Later writes through the file's handles go nowhere, as on a POSIX filesystem. */
  private detach(path: string, file: OpenFile): void {
    file.detached = true;
    if (this.openFiles.get(path) === file) this.openFiles.delete(path);
  }

  private async commit(file: OpenFile): Promise<void> {
    await file.commit(async (f, content, mtimeMs) => {
      await this.workspace.writeFile(f.path, content, { mode: f.mode, mtimeMs });
    });
  }

  /** A shadow write is one annotation as JSON: its text at the project's limit, plus room for the rest. */
  private maxShadowRequestBytes(): number {
    return this.workspace.limits.maxAnnotationBytes + 4096;
  }

  private async annotate(handle: Extract<Handle, { kind: 'shadow' }>): Promise<void> {
    const text = handle.request.snapshot().toString('utf8');
    handle.request.dirty = false;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw fsError(E.EINVAL, 'an annotation is a JSON object {"text": ..., "line"?: n, "tags"?: [...]}');
    }
    const { text: note, line, tags } = (body ?? {}) as { text?: unknown; line?: unknown; tags?: unknown };
    if (typeof note !== 'string') throw fsError(E.EINVAL, 'annotation "text" must be a string');
    if (line !== undefined && !(Number.isSafeInteger(line) && (line as number) > 0)) throw fsError(E.EINVAL, 'annotation "line" must be a positive integer');
    if (tags !== undefined && !(Array.isArray(tags) && tags.every((t) => typeof t === 'string'))) throw fsError(E.EINVAL, 'annotation "tags" must be strings');
    const command: { type: 'Annotate'; path: string; text: string; line?: number; tags?: string[] } = { type: 'Annotate', path: handle.path, text: note };
    if (line !== undefined) command.line = line as number;
    if (tags !== undefined) command.tags = tags as string[];
    await this.workspace.execute(command);
  }

  private openCurrent(path: string, writing: boolean, truncating: boolean): Result<number> {
    const open = this.openFiles.get(path);
    if (open) {
      open.refs++;
      return this.handles.add({ kind: 'file', file: open, writable: writing });
    }
    const node = this.requireNode(this.workspace.state, path);
    if (node.kind === 'directory') throw fsError(E.EISDIR, `${path} is a directory`);
    if (node.kind !== 'file') throw fsError(E.EINVAL, `${path} is not a regular file`);
    if (!writing) return this.openBlob(node, path);
    // O_TRUNC is followed by ftruncate(0): no need to fetch content about to be dropped.
    const content = truncating ? Promise.resolve(Buffer.alloc(0)) : this.workspace.readBlob(node.hash);
    return content.then((data) => {
      // Another open may have raced us while the blob loaded; share its copy.
      let file = this.openFiles.get(path);
      if (!file) {
        file = new OpenFile(path, Buffer.from(data), node.mode, false, this.budget);
        // Until a write, stat shows the recorded mtime, not the time of the open.
        file.lastWriteMs = node.mtimeMs;
        this.openFiles.set(path, file);
      }
      file.refs++;
      return this.handles.add({ kind: 'file', file, writable: true });
    });
  }

  private openBlob(node: TreeNode, label: string): Promise<number> {
    if (node.kind === 'directory') throw fsError(E.EISDIR, `${label} is a directory`);
    if (node.kind !== 'file') throw fsError(E.EINVAL, `${label} is not a regular file`);
    return this.workspace.readBlob(node.hash).then((data) => this.handles.add({ kind: 'bytes', data }));
  }

  private readStream(handle: Stream, target: Buffer, length: number): Result<number> {
    if (handle.pending.length > 0 || handle.closed || this.closed) return drain(handle, target, length);
    return new Promise<number>((resolve) => {
      const timer = setTimeout(() => {
        // fuse-native cannot be interrupted, so a reader killed mid-read waits for our answer: keep it short.
        if (handle.pending.length === 0) enqueue(handle, Buffer.from(`${JSON.stringify({ heartbeat: true, head: this.workspace.head })}\n`));
        this.wake(handle);
      }, HEARTBEAT_MS);
      handle.waiter = () => {
        clearTimeout(timer);
        resolve(drain(handle, target, length));
      };
    });
  }

  private async readValidate(handle: Extract<Handle, { kind: 'validate' }>, target: Buffer, length: number): Promise<number> {
    if (handle.answer === undefined) {
      handle.answer = Buffer.from(await validateAnswers(Buffer.concat(handle.request).toString('utf8'), this.validator));
      handle.answerOffset = 0;
    }
    const n = handle.answer.copy(target, 0, handle.answerOffset, Math.min(handle.answer.length, handle.answerOffset + length));
    handle.answerOffset += n;
    return n;
  }

  private feedStreams(events: RecordedEvent[]): void {
    if (this.streams.size === 0) return;
    const chunk = Buffer.from(events.map(renderLogLine).join(''));
    for (const stream of this.streams) {
      if (stream.pendingBytes + chunk.length <= MAX_STREAM_BACKLOG) {
        enqueue(stream, chunk);
      } else {
        stream.pending = [];
        stream.pendingBytes = 0;
        enqueue(stream, Buffer.from(`${JSON.stringify({ overflow: true, head: events[events.length - 1]?.seq ?? this.workspace.head })}\n`));
      }
      this.wake(stream);
    }
  }

  private wake(stream: Stream): void {
    const waiter = stream.waiter;
    stream.waiter = undefined;
    waiter?.();
  }

  private async renderLog(): Promise<Buffer> {
    const ws = this.workspace;
    const head = ws.head;
    const parts: Buffer[] = [];
    for (let from = 1; from <= head; ) {
      const page = await ws.store.read(ws.project, { from, to: head, limit: LOG_PAGE });
      if (page.length === 0) break;
      parts.push(Buffer.from(page.map(renderLogLine).join('')));
      from = page[page.length - 1]!.seq + 1;
    }
    return Buffer.concat(parts);
  }

  /**
   * A history view: synchronous once loaded (history is immutable), so cached stats and opens skip a
   * promise hop. A view named by time resolves to its sequence once, then shares that view.
   */
  private stateFor(ref: HistoryRef): Result<ProjectState> {
    if ('name' in ref) {
      const seq = this.timeViews.get(ref.name);
      return seq === undefined ? this.seqAtTime(ref).then((s) => this.stateFor({ seq: s })) : this.stateFor({ seq });
    }
    const ready = this.readyViews.get(ref.seq);
    if (ready) return ready;
    return this.workspace.stateAt(ref.seq).then((state) => {
      if (this.readyViews.size >= READY_VIEWS) this.readyViews.delete(this.readyViews.keys().next().value!);
      this.readyViews.set(ref.seq, state);
      return state;
    });
  }

  private async seqAtTime(ref: Extract<HistoryRef, { name: string }>): Promise<number> {
    // An instant not yet past could still gain events, so only past instants are views.
    if (ref.time.getTime() > Date.now()) throw fsError(E.ENOENT, `${ref.name} is in the future`);
    const seq = await this.workspace.seqAt(ref.time);
    if (this.timeViews.size > 256) this.timeViews.clear();
    this.timeViews.set(ref.name, seq);
    return seq;
  }

  private requireWritable(at: Location, fusePath: string): void {
    // Asking for a decision changes nothing in the project, so read-only mounts may validate too.
    if (at.view === 'bridgeValidate') return;
    if (this.readOnly) throw fsError(E.EROFS, 'mounted read-only');
    if (isImmutable(at)) throw fsError(at.view === 'missing' ? E.ENOENT : E.EROFS, `${fusePath} is read-only`);
  }

  /** The project path of a change in current/, or EROFS for every other view and read-only mounts. */
  private requireCurrent(fusePath: string): string {
    const at = locate(fusePath);
    if (at.view !== 'current' || this.readOnly) throw fsError(E.EROFS, `${fusePath} is read-only`);
    return at.path;
  }

  private requireParent(path: string): void {
    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? '' : path.slice(0, slash);
    const node = this.workspace.state.nodes.get(parent);
    if (!node) throw fsError(E.ENOENT, `directory ${parent} does not exist`);
    if (node.kind !== 'directory') throw fsError(E.ENOTDIR, `${parent} is not a directory`);
  }

  private requireNode(state: ProjectState, path: string): TreeNode {
    const node = state.nodes.get(path);
    if (!node) throw fsError(E.ENOENT, `${path} does not exist`);
    return node;
  }

  private requireDirectory(state: ProjectState, path: string): Extract<TreeNode, { kind: 'directory' }> {
    const node = this.requireNode(state, path);
    if (node.kind !== 'directory') throw fsError(E.ENOTDIR, `${path} is not a directory`);
    return node;
  }

  private currentChildren(path: string): string[] {
    const names = [...this.requireDirectory(this.workspace.state, path).children];
    // Files created through this mount and not yet closed exist for the processes using them.
    for (const file of this.openFiles.values()) {
      if (!file.pending) continue;
      const slash = file.path.lastIndexOf('/');
      if ((slash < 0 ? '' : file.path.slice(0, slash)) === path) names.push(file.path.slice(slash + 1));
    }
    return names;
  }

  private nodeStat(node: TreeNode, immutable: boolean): FuseStat {
    // Masked here too, so an event recorded before setuid was dropped does not show it.
    const mask = immutable || this.readOnly ? READ_ONLY_BITS : STORED_MODE_BITS;
    switch (node.kind) {
      case 'file':
        return this.stat(S_IFREG | (node.mode & mask), node.size, node.mtimeMs, node.ctimeMs, 1);
      case 'directory':
        return this.stat(S_IFDIR | (node.mode & mask), 4096, node.mtimeMs, node.ctimeMs, 2);
      case 'symlink':
        return this.stat(S_IFLNK | 0o777, Buffer.byteLength(node.target), node.mtimeMs, node.ctimeMs, 1);
    }
  }

  private fileStat(mode: number, size: number, mtimeMs: number, ctimeMs: number): FuseStat {
    return this.stat(S_IFREG | mode, size, mtimeMs, ctimeMs, 1);
  }

  private dirStat(mode: number): FuseStat {
    return this.stat(S_IFDIR | mode, 4096, this.mountedAtMs, this.mountedAtMs, 2);
  }

  private stat(mode: number, size: number, mtimeMs: number, ctimeMs: number, nlink: number): FuseStat {
    return { mode, size, mtime: mtimeMs, atime: mtimeMs, ctime: ctimeMs, uid: this.uid, gid: this.gid, nlink, blksize: 4096, blocks: Math.ceil(size / 512) };
  }

  /** `''` for a directory, the annotated project path for a `<path>.json`, undefined when absent. */
  private shadowTarget(rel: string): string | undefined {
    const state = this.workspace.state;
    if (rel === '' || state.nodes.get(rel)?.kind === 'directory') return '';
    if (!rel.endsWith('.json')) return undefined;
    const base = rel.slice(0, -'.json'.length);
    const node = state.nodes.get(base);
    return (node && node.kind !== 'directory') || state.annotations.has(base) ? base : undefined;
  }

  private shadowStat(rel: string): FuseStat {
    const target = this.shadowTarget(rel);
    if (target === undefined) throw fsError(E.ENOENT, `shadows/${rel} does not exist`);
    if (target === '') return this.dirStat(this.readOnly ? 0o555 : 0o755);
    return this.fileStat(this.readOnly ? 0o444 : 0o644, this.renderShadow(target).length, this.mountedAtMs, this.mountedAtMs);
  }

  private renderShadow(path: string): Buffer {
    return renderJson(this.workspace.state.annotations.get(path) ?? []);
  }

  private contextEntry(rel: string):
    | { kind: 'dir'; names: string[] }
    | { kind: 'manifest'; manifest: unknown }
    | { kind: 'file'; hash: string; size: number; time: string } {
    const packages = this.workspace.state.contextPackages;
    if (rel === '') return { kind: 'dir', names: [...packages.keys()] };
    const slash = rel.indexOf('/');
    const name = slash < 0 ? rel : rel.slice(0, slash);
    const inner = slash < 0 ? '' : rel.slice(slash + 1);
    const pkg = packages.get(name);
    if (!pkg) throw fsError(E.ENOENT, `context/${rel} does not exist`);
    if (inner === 'manifest.json') return { kind: 'manifest', manifest: pkg };
    const names = new Set<string>(inner === '' ? ['manifest.json'] : []);
    const prefix = inner === '' ? '' : `${inner}/`;
    for (const file of pkg.files) {
      if (file.path === inner) return { kind: 'file', hash: file.hash, size: file.size, time: pkg.time };
      if (file.path.startsWith(prefix)) names.add(file.path.slice(prefix.length).split('/', 1)[0]!);
    }
    if (names.size === 0) throw fsError(E.ENOENT, `context/${rel} does not exist`);
    return { kind: 'dir', names: [...names] };
  }

  private contextStat(rel: string): FuseStat {
    const entry = this.contextEntry(rel);
    if (entry.kind === 'dir') return this.dirStat(0o555);
    if (entry.kind === 'manifest') return this.fileStat(0o444, renderJson(entry.manifest).length, this.mountedAtMs, this.mountedAtMs);
    const ms = Date.parse(entry.time);
    return this.fileStat(0o444, entry.size, ms, ms);
  }

  private contextChildren(rel: string): string[] {
    const entry = this.contextEntry(rel);
    if (entry.kind !== 'dir') throw fsError(E.ENOTDIR, `context/${rel} is not a directory`);
    return entry.names;
  }
}

/** Applies `fn` now when `value` is already there, else when it resolves. */
function then<T, U>(value: Result<T>, fn: (value: T) => Result<U>): Result<U> {
  return value instanceof Promise ? value.then(fn) : fn(value);
}

function enqueue(stream: Stream, chunk: Buffer): void {
  stream.pending.push(chunk);
  stream.pendingBytes += chunk.length;
}

/** Moves up to `length` queued bytes into `target`; the rest stays queued for the next read. */
function drain(stream: Stream, target: Buffer, length: number): number {
  const { pending } = stream;
  let written = 0;
  while (written < length && pending.length > 0) {
    const head = pending[0]!;
    const n = head.copy(target, written, 0, Math.min(head.length, length - written));
    written += n;
    if (n === head.length) pending.shift();
    else pending[0] = head.subarray(n);
  }
  stream.pendingBytes -= written;
  return written;
}

function clearRequest(handle: Extract<Handle, { kind: 'validate' }>): void {
  handle.request.length = 0;
  handle.requestBytes = 0;
}
