import { once } from 'node:events';
import { evolve } from '../aggregate/evolve.js';
import { contentHash } from '../events/contentHash.js';
import { formatProjectId, type ProjectId } from '../events/projectId.js';
import { stateBefore } from '../projection/replay.js';
import type { EventStore } from '../store/eventStore.js';
import {
  ArchiveError,
  archivedEvent,
  archiveHash,
  blobsOf,
  CHECKPOINT_EVERY,
  magicLine,
  recordLine,
  type ArchiveHeader,
  type ArchiveTrailer,
  type RecordKind,
} from './format.js';
import { treeHash } from './treeHash.js';

export interface ArchiveProgress {
  events: number;
  bytes: number;
}

export interface ExportOptions {
  /** First sequence to export; default 1. An archive from N > 1 is for `importProject(..., { append: true })` onto a head of N - 1. */
  fromSeq?: number;
  /** Last sequence to export; default (and at most) the head when the export starts. */
  toSeq?: number;
  onProgress?: (progress: ArchiveProgress) => void;
}

export interface ExportResult {
  /** The last sequence in the archive. */
  head: number;
  events: number;
  blobs: number;
  bytes: number;
}

/** Writes records to `out`, waiting whenever it asks to (so memory stays one record). */
class ArchiveWriter {
  bytes = 0;
  private readonly hash = archiveHash();

  constructor(private readonly out: NodeJS.WritableStream) {}

  async magic(): Promise<void> {
    const line = magicLine();
    this.hash.update(line);
    await this.write(line);
  }

  async record(kind: RecordKind, body: Uint8Array, sha256?: string): Promise<void> {
    const line = recordLine(kind, body, sha256);
    this.hash.update(line);
    await this.write(line);
    await this.write(body);
    await this.write(NEWLINE);
  }

  async json(kind: RecordKind, value: unknown): Promise<void> {
    await this.record(kind, Buffer.from(JSON.stringify(value)));
  }

  archiveSoFar(): string {
    return this.hash.copy().digest('hex');
  }

  /** Resolves once everything written so far has been handed on by `out`. */
  flushed(): Promise<void> {
    return new Promise((resolve, reject) => this.out.write(Buffer.alloc(0), (error) => (error ? reject(error) : resolve())));
  }

  private async write(bytes: Uint8Array): Promise<void> {
    this.bytes += bytes.length;
    if (!this.out.write(bytes)) await once(this.out as NodeJS.EventEmitter, 'drain');
  }
}

const NEWLINE = Buffer.from('\n');

/**
 * Streams the project's events `fromSeq..toSeq` and the blobs they name to `out` as an archive
 * (format.ts). The range ends at the head read when the export starts, so an export from a
 * project being written to is a prefix of its log, never a torn one. Memory: one page of events,
 * one blob, the tree (without contents) and the names of the blobs already written. Does not end `out`.
 */
export async function exportProject(store: EventStore, project: ProjectId, out: NodeJS.WritableStream, options: ExportOptions = {}): Promise<ExportResult> {
  const head = await store.head(project);
  const fromSeq = options.fromSeq ?? 1;
  const toSeq = Math.min(options.toSeq ?? head, head);
  if (!Number.isSafeInteger(fromSeq) || fromSeq < 1 || !Number.isSafeInteger(toSeq) || toSeq < 0) {
    throw new ArchiveError('range', `cannot export events ${fromSeq}..${toSeq}: sequence numbers start at 1`);
  }
  if (fromSeq > toSeq + 1) {
    throw new ArchiveError('range', `cannot export from event ${fromSeq}: ${formatProjectId(project)} has ${head} events and the export ends at ${toSeq}`);
  }
  const state = await stateBefore(store, project, fromSeq);
  const writer = new ArchiveWriter(out);
  await writer.magic();
  const header: ArchiveHeader = { project: formatProjectId(project), fromSeq, toSeq, createdAt: new Date().toISOString(), checkpointEvery: CHECKPOINT_EVERY };
  await writer.json('H', header);

  const written = new Set<string>();
  let events = 0;
  for (let next = fromSeq; next <= toSeq; ) {
    // Pages end on checkpoints, so each checkpoint follows the page that reaches it.
    const pageEnd = Math.min(toSeq, Math.ceil(next / CHECKPOINT_EVERY) * CHECKPOINT_EVERY);
    const page = await store.read(project, { from: next, to: pageEnd, limit: CHECKPOINT_EVERY });
    if (page[0]?.seq !== next) throw new ArchiveError('inconsistent', `${formatProjectId(project)}: the store returned no event ${next} below its head ${head}`);
    for (const event of page) {
      for (const hash of blobsOf(event)) {
        if (written.has(hash)) continue;
        const blob = await store.getBlob(project, hash);
        if (!blob) throw new ArchiveError('missing-blob', `${formatProjectId(project)}: event ${event.seq} names blob ${hash}, which the store does not have`);
        const sha256 = contentHash(blob);
        if (sha256 !== hash) throw new ArchiveError('inconsistent', `${formatProjectId(project)}: blob ${hash} in the store is damaged (its content hashes to ${sha256})`);
        await writer.record('B', blob, sha256);
        written.add(hash);
      }
    }
    await writer.json('E', page.map(archivedEvent));
    for (const event of page) evolve(state, event);
    events += page.length;
    next = state.seq + 1;
    if (state.seq % CHECKPOINT_EVERY === 0 || state.seq === toSeq) await writer.json('C', { seq: state.seq, tree: treeHash(state) });
    options.onProgress?.({ events, bytes: writer.bytes });
  }
  const trailer: ArchiveTrailer = { events, blobs: written.size, head: toSeq, archive: writer.archiveSoFar() };
  await writer.json('T', trailer);
  await writer.flushed();
  options.onProgress?.({ events, bytes: writer.bytes });
  return { head: toSeq, events, blobs: written.size, bytes: writer.bytes };
}
