import { access, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { NewEvent, RecordedEvent } from '../../events/events.js';
import { formatProjectId, parseProjectId, type ProjectId } from '../../events/projectId.js';
import { givenTimeMs, StoreUnavailableError, type AppendOptions, type Durability, type EventStore, type ReadOptions, type Snapshot, type Subscription } from '../eventStore.js';
import { getBlobFile, packsDir, putBlobFile } from './blobFiles.js';
import { BlobPacks } from './blobPacks.js';
import { groupCommitStats, type CutReport, type ProjectLog } from './projectLog.js';
import { acquireProjectLog, releaseProjectLog } from './projectRegistry.js';
import { loadSnapshotFile, saveSnapshotFile } from './snapshotFiles.js';
import { io } from './storeErrors.js';
import { Tail } from './tail.js';

export interface EmbeddedStoreOptions {
  dir: string;
  /** Never takes a writer lock and never writes: for a reader beside a running mount. */
  readOnly: boolean;
  /** Segment files roll once they would grow past this (default 64 MiB); small in tests. */
  segmentBytes?: number;
}

const DEFAULT_READ_LIMIT = 1000;

/** Appends and fsync'd batches so far in this process (for metrics and the benchmark). */
export function embeddedCommitStats(): { batches: number; appends: number } {
  return { ...groupCommitStats };
}

export type { CutReport } from './projectLog.js';

/**
 * Cuts off the damaged end of a project's log (which opening refuses, naming this), keeping the
 * cut bytes and recording the sequence numbers they held as lost. Undefined when nothing is damaged.
 */
export async function repairEmbeddedProject(dir: string, project: ProjectId): Promise<CutReport | undefined> {
  const id = parseProjectId(formatProjectId(project));
  const projectDir = join(resolve(dir), id.namespace, id.name);
  const log = acquireProjectLog(projectDir, formatProjectId(id));
  try {
    return await log.repair();
  } finally {
    await releaseProjectLog(projectDir, log);
  }
}

/**
 * The event store in a local directory: `<dir>/<namespace>/<name>/` per project, holding
 * `log/` (segment files), `blobs/`, `snapshots/` and, while a process appends, `writer.lock`.
 */
export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<EventStore> {
  const dir = resolve(options.dir);
  if (!options.readOnly) await io(`creating ${dir}`, () => mkdir(dir, { recursive: true }));
  return new EmbeddedStore(dir, options.readOnly, options.segmentBytes);
}

class EmbeddedStore implements EventStore {
  readonly kind = 'embedded' as const;
  readonly location: string;
  private readonly logs = new Map<string, ProjectLog>();
  private readonly packs = new Map<string, BlobPacks>();
  private readonly tails = new Set<Tail>();
  private readonly dirs = new Map<string, string>();
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly readOnly: boolean,
    private readonly segmentBytes: number | undefined,
  ) {
    this.location = `file://${dir}`;
  }

  async append(project: ProjectId, events: readonly NewEvent[], options: AppendOptions = {}): Promise<RecordedEvent[]> {
    this.checkWritable('append');
    for (const blob of options.blobs ?? []) await this.storeBlob(project, blob.content, options.durability, blob.hash);
    return this.log(project).append(events, options.expectedVersion, givenTimeMs(options), options.durability !== 'visible');
  }

  async sync(project: ProjectId): Promise<void> {
    this.checkOpen();
    if (!this.readOnly) await this.log(project).sync();
  }

  async head(project: ProjectId): Promise<number> {
    return this.log(project).head();
  }

  async read(project: ProjectId, options: ReadOptions = {}): Promise<RecordedEvent[]> {
    return this.log(project).read(options.from ?? 1, options.to ?? Number.MAX_SAFE_INTEGER, options.limit ?? DEFAULT_READ_LIMIT);
  }

  subscribe(
    project: ProjectId,
    afterSeq: number,
    onEvents: (events: RecordedEvent[]) => void,
    onError?: (error: Error) => void,
  ): Subscription {
    const tail = new Tail(this.log(project), afterSeq, onEvents, onError, (t) => this.tails.delete(t));
    this.tails.add(tail);
    return tail;
  }

  async putBlob(project: ProjectId, content: Uint8Array): Promise<string> {
    this.checkWritable('putBlob');
    return this.storeBlob(project, content, 'durable');
  }

  private storeBlob(project: ProjectId, content: Uint8Array, durability: Durability | undefined, hash?: string): Promise<string> {
    const log = this.log(project);
    // Not durable yet: the log's next sync makes the blob durable before any record naming it.
    const unsynced = durability === 'visible' ? (path: string) => log.noteUnsyncedBlob(path) : undefined;
    return io(`storing a blob in ${formatProjectId(project)}`, () => putBlobFile(this.projectDir(project), content, this.packsOf(project), unsynced, hash));
  }

  async getBlob(project: ProjectId, hash: string): Promise<Buffer | undefined> {
    return io(`reading blob ${hash} of ${formatProjectId(project)}`, () => getBlobFile(this.projectDir(project), hash, formatProjectId(project), this.packsOf(project)));
  }

  async saveSnapshot(project: ProjectId, snapshot: Snapshot): Promise<void> {
    this.checkWritable('saveSnapshot');
    await io(`saving a snapshot of ${formatProjectId(project)}`, () => saveSnapshotFile(this.projectDir(project), snapshot));
  }

  async loadSnapshot(project: ProjectId, atOrBefore = Number.MAX_SAFE_INTEGER): Promise<Snapshot | undefined> {
    return io(`loading a snapshot of ${formatProjectId(project)}`, () => loadSnapshotFile(this.projectDir(project), atOrBefore));
  }

  async ping(): Promise<void> {
    this.checkOpen();
    await io(`opening ${this.dir}`, () => access(this.dir));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.tails].map((t) => t.close()));
    const logs = [...this.logs];
    this.logs.clear();
    await Promise.all(logs.map(([dir, log]) => releaseProjectLog(dir, log)));
    // After the logs' last sync, which syncs the packs by path.
    for (const packs of this.packs.values()) packs.close();
    this.packs.clear();
  }

  private packsOf(project: ProjectId): BlobPacks {
    this.checkOpen();
    const dir = this.projectDir(project);
    let packs = this.packs.get(dir);
    if (!packs) {
      packs = new BlobPacks(packsDir(dir), formatProjectId(project));
      this.packs.set(dir, packs);
    }
    return packs;
  }

  private log(project: ProjectId): ProjectLog {
    this.checkOpen();
    const dir = this.projectDir(project);
    let log = this.logs.get(dir);
    if (!log) {
      log = acquireProjectLog(dir, formatProjectId(project), this.segmentBytes);
      this.logs.set(dir, log);
    }
    return log;
  }

  /** Validated once per project, because the names become directory names; every store call asks. */
  private projectDir(project: ProjectId): string {
    const key = formatProjectId(project);
    let dir = this.dirs.get(key);
    if (dir === undefined) {
      const id = parseProjectId(key);
      dir = join(this.dir, id.namespace, id.name);
      this.dirs.set(key, dir);
    }
    return dir;
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreUnavailableError(`embedded store ${this.dir} is closed`);
  }

  private checkWritable(what: string): void {
    this.checkOpen();
    if (this.readOnly) throw new StoreUnavailableError(`embedded store ${this.dir} is open read-only: ${what} refused`);
  }
}
