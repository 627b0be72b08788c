import type { ProjectId } from '@lighthouse-bridge/core';
import { fuseOpDuration, fuseResentRequests, projectLabels } from '@lighthouse-bridge/core/observability';
import type { FuseStat } from '../attributes.js';
import type { BridgeFs, Opened } from '../bridgeFs.js';
import { E, fsError, toErrno } from '../errno.js';
import { then } from '../views/view.js';
import { NodeTable, type Node, type NodeJournal } from './nodes.js';
import { Fattr, Fopen, Init, INIT_OUT, KERNEL_MINOR, KERNEL_VERSION, MAX_PAGES, MAX_WRITE, NO_REPLY, Op, OPEN_OUT, OUT_HEADER, RENAME_NOREPLACE, WRITE_IN, ENTRY_OUT } from './protocol.js';
import { attrReply, bytesReply, direntplusReply, direntsReply, entryReply, fittingNames, openReply, Request, statfsReply, u64, writeCountReply, writeEntry, writeOpen } from './wire.js';

type Result<T> = T | Promise<T>;

/** Kernel cache settings for one mount, in seconds. */
export interface CacheTimeouts {
  entry: number;
  attr: number;
  /** How long the kernel may remember that a name does not exist (0: never). */
  negative: number;
}

/** What the kernel told us in INIT, and what a successor must know to serve the same connection. */
export interface Negotiated {
  minor: number;
  /** The kernel can requeue requests a dead server had read (FUSE_NOTIFY_RESEND, Linux 6.9). */
  resend: boolean;
}

/** Node-table and descriptor changes, for a successor to rebuild both (custody, ADR 0083). */
export interface SessionJournal extends NodeJournal {
  opened(fh: number, nodeId: number, flags: number, mirror: string | undefined): void;
  closed(fh: number): void;
}

export interface SessionOptions {
  fs: BridgeFs;
  project: ProjectId;
  cache: CacheTimeouts;
  /** False while a missing name must not be cached at all (ADR 0092); absent, it always may be. */
  rememberMissing?: () => boolean;
  /** Writes one reply to the device. */
  send: (reply: Buffer) => void;
  /** Failures answered with EIO (a bug or a store failure, not an ordinary refusal). */
  report: (op: string, error: unknown) => void;
  /** Records node-table and descriptor changes for a successor (custody); absent, nothing survives the process. */
  journal?: SessionJournal | undefined;
  /** Hears the INIT request the first time the kernel sends it: a successor replays it. */
  onInit?: (raw: Buffer) => void;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const PERMISSION_BITS = 0o7777;

const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Op).map(([name, code]) => [code, name.toLowerCase()]));

function cacheFlags(opened: Opened): number {
  const cache = opened.cache === 'direct' ? Fopen.DIRECT_IO : opened.cache === 'keep' ? Fopen.KEEP_CACHE : 0;
  return cache | (opened.flushes ? 0 : Fopen.NOFLUSH);
}

function join(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/**
 * The FUSE protocol for one mount, served to a BridgeFs: decodes each request the pump reads,
 * resolves node ids to the paths BridgeFs works with, and writes one reply. Errors become errno
 * here, and only here; every operation is timed into `lighthouse_bridge_fuse_op_duration_seconds`.
 * Synchronous answers (getattr, read of a projection) go out before the next request is decoded.
 */
export class FuseSession {
  readonly nodes: NodeTable;
  private readonly handles = new Map<number, Node>();
  private readonly dirs = new Map<number, { node: number; names?: readonly string[] }>();
  /**
   * Directory handles need no state a successor must know (a listing is read again from its node),
   * but their numbers must not collide with a predecessor's still held by the kernel: each process
   * starts its own range at its start time.
   */
  private nextDir = Date.now() * 1024;
  /** Nodes unlinked or replaced while open, by id: fstat through their descriptors still answers. */
  private readonly kept = new Set<number>();
  private negotiated: Negotiated | undefined;
  private readonly observers = new Map<number, (seconds: number) => void>();
  private readonly who: ReturnType<typeof projectLabels>;

  constructor(private readonly options: SessionOptions) {
    this.nodes = new NodeTable(options.journal);
    this.who = projectLabels(options.project);
  }

  get connection(): Negotiated | undefined {
    return this.negotiated;
  }

  /** A successor's start: the kernel negotiated with a predecessor; read what it said from its INIT. */
  adopt(init: Buffer): Negotiated {
    return (this.negotiated = negotiate(new Request(init)).negotiated);
  }

  /** Handles a restored from a predecessor's journal: RELEASE and FLUSH of them keep working. */
  adoptHandle(fh: number, nodeId: number): void {
    const node = this.nodes.get(nodeId);
    if (!node) return;
    node.open++;
    this.handles.set(fh, node);
  }

  handle(raw: Buffer): void {
    let request: Request;
    try {
      request = new Request(raw);
    } catch {
      return; // shorter than a header: nothing to answer
    }
    // Bit 63 of unique: the kernel queued this again for us after a takeover (FUSE_UNIQUE_RESEND).
    if (raw[15]! & 0x80) fuseResentRequests.inc(this.who);
    if (NO_REPLY.has(request.opcode)) return this.noReply(request);
    const start = performance.now();
    const observe = this.observer(request.opcode);
    const done = (reply: Buffer): void => {
      observe((performance.now() - start) / 1000);
      this.options.send(reply);
    };
    const fail = (error: unknown): void => done(request.error(toErrno(error, (e) => this.options.report(OP_NAMES[request.opcode] ?? String(request.opcode), e))));
    let result: Result<Buffer>;
    try {
      result = this.dispatch(request);
    } catch (error) {
      fail(error);
      return;
    }
    if (result instanceof Promise) result.then(done, fail);
    else done(result);
  }

  private observer(opcode: number): (seconds: number) => void {
    let observe = this.observers.get(opcode);
    if (!observe) {
      observe = fuseOpDuration.observer({ op: OP_NAMES[opcode] ?? String(opcode), ...this.who });
      this.observers.set(opcode, observe);
    }
    return observe;
  }

  private noReply(request: Request): void {
    if (request.opcode === Op.FORGET) {
      this.nodes.forget(request.nodeId, u64(request.body, 0));
    } else if (request.opcode === Op.BATCH_FORGET) {
      const count = request.body.readUInt32LE(0);
      for (let i = 0, at = 8; i < count && at + 16 <= request.body.length; i++, at += 16) {
        this.nodes.forget(u64(request.body, at), u64(request.body, at + 8));
      }
    }
    // INTERRUPT: every operation answers promptly or is a stream read that ends within its poll.
  }

  private dispatch(request: Request): Result<Buffer> {
    const { fs } = this.options;
    const body = request.body;
    switch (request.opcode) {
      case Op.INIT:
        return this.init(request);
      case Op.LOOKUP:
        return this.lookup(request, request.name().name);
      case Op.GETATTR:
        return then(this.kept.has(request.nodeId) ? fs.getattrKept(String(request.nodeId)) : fs.getattr(this.path(request.nodeId)), (stat) => attrReply(request, request.nodeId, stat, this.options.cache.attr));
      case Op.SETATTR:
        return this.setattr(request);
      case Op.READLINK:
        return then(fs.readlink(this.path(request.nodeId)), (target) => bytesReply(request, Buffer.from(target)));
      case Op.SYMLINK: {
        const { name, next } = request.name();
        const target = request.name(next).name;
        return this.created(request, name, (path) => fs.symlink(target, path));
      }
      case Op.MKNOD:
        return this.mknod(request);
      case Op.MKDIR: {
        const mode = body.readUInt32LE(0) & PERMISSION_BITS;
        return this.created(request, request.name(8).name, (path) => fs.mkdir(path, mode));
      }
      case Op.UNLINK:
        return this.unlink(request, request.name().name);
      case Op.RMDIR: {
        const name = request.name().name;
        return then(fs.rmdir(this.childPath(request.nodeId, name)), () => {
          this.nodes.detach(request.nodeId, name);
          return request.reply(0);
        });
      }
      case Op.RENAME:
        return this.rename(request, u64(body, 0), 0, 8);
      case Op.RENAME2:
        return this.rename(request, u64(body, 0), body.readUInt32LE(8), 16);
      case Op.OPEN: {
        const flags = body.readUInt32LE(0);
        return then(fs.open(this.path(request.nodeId), flags), (opened) => openReply(request, this.opened(request.nodeId, opened, flags), cacheFlags(opened)));
      }
      case Op.CREATE:
        return this.create(request);
      case Op.READ: {
        const size = body.readUInt32LE(16);
        const out = request.reply(size);
        return then(fs.read(u64(body, 0), out.subarray(OUT_HEADER), size, u64(body, 8)), (n) => {
          out.writeUInt32LE(OUT_HEADER + n, 0);
          return out.subarray(0, OUT_HEADER + n);
        });
      }
      case Op.WRITE: {
        const size = body.readUInt32LE(16);
        const n = fs.write(u64(body, 0), body.subarray(WRITE_IN, WRITE_IN + size), size, u64(body, 8));
        return writeCountReply(request, n);
      }
      case Op.STATFS:
        return statfsReply(request, fs.statfs());
      case Op.FLUSH:
        return then(fs.flush(u64(body, 0)), () => request.reply(0));
      case Op.RELEASE:
        return this.release(request, u64(body, 0));
      case Op.FSYNC:
        return then(fs.fsync(u64(body, 0)), () => request.reply(0));
      case Op.FSYNCDIR:
        return then(fs.fsyncdir(), () => request.reply(0));
      case Op.OPENDIR: {
        this.path(request.nodeId);
        const fh = this.nextDir++;
        this.dirs.set(fh, { node: request.nodeId });
        return openReply(request, fh, 0);
      }
      case Op.READDIR:
        return this.readdir(request, u64(body, 0), u64(body, 8), body.readUInt32LE(16));
      case Op.READDIRPLUS:
        return this.readdirplus(request, u64(body, 0), u64(body, 8), body.readUInt32LE(16));
      case Op.RELEASEDIR:
        this.dirs.delete(u64(body, 0));
        return request.reply(0);
      case Op.DESTROY:
        return request.reply(0);
      default:
        // xattrs, links, locks, ioctl, …: ENOSYS makes the kernel stop asking (xattrs then fail with EOPNOTSUPP).
        return request.error(E.ENOSYS);
    }
  }

  private init(request: Request): Buffer {
    const { negotiated, flags } = negotiate(request);
    if (!this.negotiated) this.options.onInit?.(Buffer.from(request.raw));
    this.negotiated = negotiated;
    const out = request.reply(INIT_OUT);
    out.fill(0, OUT_HEADER);
    const at = OUT_HEADER;
    out.writeUInt32LE(KERNEL_VERSION, at);
    out.writeUInt32LE(negotiated.minor, at + 4);
    out.writeUInt32LE(request.body.readUInt32LE(8), at + 8); // max_readahead: the kernel's
    out.writeUInt32LE(flags, at + 12);
    out.writeUInt16LE(64, at + 16); // max_background
    out.writeUInt16LE(48, at + 18); // congestion_threshold
    out.writeUInt32LE(MAX_WRITE, at + 20);
    out.writeUInt32LE(1, at + 24); // time_gran: nanoseconds
    out.writeUInt16LE(MAX_PAGES, at + 28);
    return out;
  }

  /** The path of a node the kernel names; a node no path leads to any more is gone (ENOENT). */
  private path(nodeId: number): string {
    const path = this.nodes.path(nodeId);
    if (path === undefined) throw fsError(E.ENOENT, `node ${nodeId} has no path any more`);
    return path;
  }

  private childPath(parent: number, name: string): string {
    return join(this.path(parent), name);
  }

  private lookup(request: Request, name: string): Result<Buffer> {
    const { cache } = this.options;
    const path = this.childPath(request.nodeId, name);
    let stat: Result<FuseStat>;
    try {
      stat = this.options.fs.getattr(path);
    } catch (error) {
      return this.missing(request, error);
    }
    const found = (s: FuseStat): Buffer => entryReply(request, this.nodes.remember(request.nodeId, name).id, s, cache.entry, cache.attr);
    return stat instanceof Promise ? stat.then(found, (error: unknown) => this.missing(request, error)) : found(stat);
  }

  /** ENOENT from a lookup becomes a negative entry the kernel may cache (git probes many missing names). */
  private missing(request: Request, error: unknown): Buffer {
    if (toErrno(error, () => undefined) !== E.ENOENT || this.options.cache.negative <= 0 || this.options.rememberMissing?.() === false) throw error;
    return entryReply(request, 0, undefined, this.options.cache.negative, 0);
  }

  /** A new entry made by `make`: answered like its lookup. */
  private created(request: Request, name: string, make: (path: string) => Result<void>): Result<Buffer> {
    const path = this.childPath(request.nodeId, name);
    return then(make(path), () => then(this.options.fs.getattr(path), (stat) => entryReply(request, this.nodes.remember(request.nodeId, name).id, stat, this.options.cache.entry, this.options.cache.attr)));
  }

  private mknod(request: Request): Result<Buffer> {
    const mode = request.body.readUInt32LE(0);
    if ((mode & S_IFMT) !== S_IFREG) throw fsError(E.EPERM, 'only regular files can be made with mknod');
    return this.created(request, request.name(16).name, (path) => then(this.options.fs.create(path, mode & PERMISSION_BITS), (opened) => this.options.fs.release(opened.fd)));
  }

  private create(request: Request): Result<Buffer> {
    const mode = request.body.readUInt32LE(4) & PERMISSION_BITS;
    const name = request.name(16).name;
    const path = this.childPath(request.nodeId, name);
    const opened = this.options.fs.create(path, mode);
    const answer = (stat: FuseStat): Buffer => {
      let node: Node;
      try {
        node = this.nodes.remember(request.nodeId, name);
      } catch (error) {
        this.giveBack(opened.fd);
        throw error;
      }
      const out = request.reply(ENTRY_OUT + OPEN_OUT);
      writeEntry(out, OUT_HEADER, node.id, stat, this.options.cache.entry, this.options.cache.attr);
      writeOpen(out, OUT_HEADER + ENTRY_OUT, this.opened(node.id, opened, request.body.readUInt32LE(0)), cacheFlags(opened));
      return out;
    };
    let stat: Result<FuseStat>;
    try {
      stat = this.options.fs.getattr(path);
    } catch (error) {
      this.giveBack(opened.fd);
      throw error;
    }
    return stat instanceof Promise ? stat.then(answer, (error: unknown) => (this.giveBack(opened.fd), Promise.reject(error))) : answer(stat);
  }

  /** A descriptor BridgeFs opened that the kernel will never hear of (the answer failed): released. */
  private giveBack(fd: number): void {
    void Promise.resolve()
      .then(() => this.options.fs.release(fd))
      .catch(() => undefined);
  }

  private opened(nodeId: number, opened: Opened, flags: number): number {
    try {
      this.options.journal?.opened(opened.fd, nodeId, flags, opened.mirror);
    } catch (error) {
      // Not on record, so not given out: the kernel hears EIO and nothing stays open behind it.
      this.giveBack(opened.fd);
      throw error;
    }
    const node = this.nodes.get(nodeId);
    if (node) {
      node.open++;
      this.handles.set(opened.fd, node);
    }
    return opened.fd;
  }



  private setattr(request: Request): Result<Buffer> {
    const { fs } = this.options;
    const body = request.body;
    const valid = body.readUInt32LE(0);
    if (this.kept.has(request.nodeId)) return this.setattrKept(request, valid);
    const path = this.path(request.nodeId);
    const steps: (() => Result<void>)[] = [];
    if (valid & Fattr.MODE) steps.push(() => fs.chmod(path, body.readUInt32LE(68) & PERMISSION_BITS));
    if (valid & (Fattr.UID | Fattr.GID)) steps.push(() => fs.chown(path));
    if (valid & Fattr.SIZE) {
      const size = u64(body, 16);
      steps.push(valid & Fattr.FH ? () => fs.ftruncate(u64(body, 8), size) : () => fs.truncate(path, size));
    }
    // Only the mtime is modelled; an atime-only change (touch -a) has nothing to record.
    if (valid & Fattr.MTIME) {
      const mtimeMs = valid & Fattr.MTIME_NOW ? Date.now() : u64(body, 40) * 1000 + body.readUInt32LE(60) / 1e6;
      steps.push(() => fs.utimens(path, mtimeMs));
    }
    const run = (i: number): Result<Buffer> => (i < steps.length ? then(steps[i]!(), () => run(i + 1)) : then(fs.getattr(path), (stat) => attrReply(request, request.nodeId, stat, this.options.cache.attr)));
    return run(0);
  }

  /** An unlinked or replaced file whose descriptors are still open: only its size can still change. */
  private setattrKept(request: Request, valid: number): Result<Buffer> {
    const { fs } = this.options;
    if (valid & Fattr.SIZE && valid & Fattr.FH) fs.ftruncate(u64(request.body, 8), u64(request.body, 16));
    return attrReply(request, request.nodeId, fs.getattrKept(String(request.nodeId)), this.options.cache.attr);
  }

  /** The key a node open at its unlink (or replacement) is kept under until its last release. */
  private keepIfOpen(node: Node | undefined): string | undefined {
    return node && node.open > 0 ? String(node.id) : undefined;
  }

  private unlink(request: Request, name: string): Result<Buffer> {
    const node = this.nodes.child(request.nodeId, name);
    const keepAs = this.keepIfOpen(node);
    return then(this.options.fs.unlink(this.childPath(request.nodeId, name), keepAs), () => {
      this.nodes.detach(request.nodeId, name);
      if (keepAs !== undefined) this.kept.add(node!.id);
      return request.reply(0);
    });
  }

  private rename(request: Request, newParent: number, flags: number, namesAt: number): Result<Buffer> {
    const { fs } = this.options;
    if (flags & ~RENAME_NOREPLACE) throw fsError(E.EINVAL, `rename flags ${flags} are not supported`);
    const { name, next } = request.name(namesAt);
    const newName = request.name(next).name;
    const from = this.childPath(request.nodeId, name);
    const to = this.childPath(newParent, newName);
    const replaced = this.nodes.child(newParent, newName);
    const replacedAs = this.keepIfOpen(replaced);
    return (async () => {
      if (flags & RENAME_NOREPLACE && (await exists(fs, to))) throw fsError(E.EEXIST, `${to} exists`);
      // One step in BridgeFs: a rename that fails changes nothing, also for an open file it would replace.
      await fs.rename(from, to, replacedAs);
      this.nodes.move(request.nodeId, name, newParent, newName);
      if (replacedAs !== undefined) this.kept.add(replaced!.id);
      return request.reply(0);
    })();
  }

  private release(request: Request, fh: number): Result<Buffer> {
    const node = this.handles.get(fh);
    this.handles.delete(fh);
    this.options.journal?.closed(fh);
    return then(this.options.fs.release(fh), () => {
      if (node && --node.open === 0 && this.kept.delete(node.id)) this.options.fs.dropKept(String(node.id));
      return request.reply(0);
    });
  }

  /** The directory's names, "." and ".." first: listed at offset 0, kept for the reads that continue it. */
  private listing(request: Request, fh: number, offset: number): Result<readonly string[]> {
    let dir = this.dirs.get(fh);
    // A handle of a predecessor (custody): listed again from its node.
    if (!dir || dir.node !== request.nodeId) this.dirs.set(fh, (dir = { node: request.nodeId }));
    const listing = dir;
    if (offset > 0 && listing.names) return listing.names;
    return then(this.options.fs.readdir(this.path(listing.node)), (names) => (listing.names = ['.', '..', ...names]));
  }

  private readdir(request: Request, fh: number, offset: number, size: number): Result<Buffer> {
    return then(this.listing(request, fh, offset), (names) => direntsReply(request, fittingNames(names, offset, size, 0)));
  }

  /**
   * READDIRPLUS: each name that fits with its node and attributes, counted as a lookup, as the
   * kernel counts it. Only the names that fit are looked at, and only at what is at hand: a listing
   * loads nothing (a name of `history/` whose view is not restored, one that went meanwhile, one
   * whose view failed is listed without an entry; the kernel looks it up if it is used, and that
   * lookup loads it or answers why not).
   */
  private readdirplus(request: Request, fh: number, offset: number, size: number): Result<Buffer> {
    return then(this.listing(request, fh, offset), (names) => {
      const dir = this.path(request.nodeId);
      const entries = fittingNames(names, offset, size, ENTRY_OUT).map((listed) => {
        // "." and ".." (indexes 0 and 1) the kernel never links.
        const entry = listed.index < 2 ? undefined : this.listedEntry(request.nodeId, dir, names[listed.index]!);
        return { ...listed, stat: entry?.stat, nodeId: entry?.nodeId ?? 0 };
      });
      return direntplusReply(request, entries, this.options.cache.entry, this.options.cache.attr);
    });
  }

  /**
   * A listed name's attributes and node, counted as a lookup; undefined (listed without an entry)
   * when either cannot be had. Never throws, so no name counted before it goes unsent.
   */
  private listedEntry(parent: number, dir: string, name: string): { stat: FuseStat; nodeId: number } | undefined {
    try {
      const stat = this.options.fs.getattrAtHand(join(dir, name));
      return stat && { stat, nodeId: this.nodes.remember(parent, name).id };
    } catch {
      return undefined;
    }
  }
}

function negotiate(request: Request): { negotiated: Negotiated; flags: number } {
  const body = request.body;
  const kernelMinor = body.readUInt32LE(4);
  const kernelFlags = body.readUInt32LE(12);
  const flags2 = kernelFlags & Init.INIT_EXT && body.length >= 20 ? body.readUInt32LE(16) : 0;
  const wanted = Init.ASYNC_READ | Init.BIG_WRITES | Init.MAX_PAGES | Init.PARALLEL_DIROPS | Init.DO_READDIRPLUS | Init.READDIRPLUS_AUTO;
  return {
    negotiated: { minor: Math.min(kernelMinor, KERNEL_MINOR), resend: (flags2 & Init.FLAGS2_HAS_RESEND) !== 0 },
    flags: kernelFlags & wanted,
  };
}

async function exists(fs: BridgeFs, path: string): Promise<boolean> {
  try {
    await fs.getattr(path);
    return true;
  } catch {
    return false;
  }
}
