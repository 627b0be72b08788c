import { createHash, type Hash } from 'node:crypto';
import type { RecordedEvent } from '../events/events.js';
import { contentHash } from '../events/contentHash.js';

/*
 * A project archive, version 1 (docs/adr/0011-project-archive-format.md):
 *
 *   lighthouse-bridge-archive 1\n
 *   then records, each  <kind> <length> <sha256 of body>\n<body>\n
 *     H  header   JSON {project, fromSeq, toSeq, createdAt, checkpointEvery}; always first
 *     B  blob     the blob's bytes (so its sha256 is its name); before the first event naming it
 *     E  events   JSON array of up to `checkpointEvery` recorded events {seq, time, type, actor, data}
 *     C  check    JSON {seq, tree}: the tree hash of the project as of `seq`
 *     T  trailer  JSON {events, blobs, head, archive}; always last, nothing after it
 *
 * `archive` is the sha256 of the magic line and every record line before the trailer. Each line
 * holds its body's sha256, so this one hash binds every byte, the order and the count of records,
 * without hashing the bodies twice.
 */
export const ARCHIVE_MAGIC = 'lighthouse-bridge-archive';
export const ARCHIVE_VERSION = 1;
/** Events per E record, and the distance between checkpoints (the stores' default snapshot interval). */
export const CHECKPOINT_EVERY = 1000;
/** The largest record body a reader accepts: above any blob a project may hold (`maxFileBytes`). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

export type RecordKind = 'H' | 'B' | 'E' | 'C' | 'T';

export interface ArchiveHeader {
  project: string;
  fromSeq: number;
  toSeq: number;
  createdAt: string;
  checkpointEvery: number;
}
export interface Checkpoint {
  seq: number;
  tree: string;
}
export interface ArchiveTrailer {
  events: number;
  blobs: number;
  head: number;
  archive: string;
}

export type ArchivedEvent = Pick<RecordedEvent, 'seq' | 'time' | 'type' | 'actor' | 'data'>;

export type ArchiveProblem = 'not-an-archive' | 'version' | 'truncated' | 'tampered' | 'inconsistent' | 'target' | 'range' | 'missing-blob';

/** An archive that cannot be written or imported, or a target that cannot take it; the message says which and why. */
export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
  constructor(
    readonly problem: ArchiveProblem,
    message: string,
  ) {
    super(message);
  }
}

export function magicLine(): Buffer {
  return Buffer.from(`${ARCHIVE_MAGIC} ${ARCHIVE_VERSION}\n`);
}

export function recordLine(kind: RecordKind, body: Uint8Array, sha256 = contentHash(body)): Buffer {
  return Buffer.from(`${kind} ${body.length} ${sha256}\n`);
}

/** The running whole-archive hash: the magic line and each record line. */
export function archiveHash(): Hash {
  return createHash('sha256');
}

/** The blobs an event names: what must travel with it. */
export function blobsOf(event: { type: string; data: unknown }): string[] {
  if (event.type === 'FileWritten') return [(event.data as { hash: string }).hash];
  if (event.type === 'ContextPackageCreated') return (event.data as { files: Array<{ hash: string }> }).files.map((f) => f.hash);
  return [];
}

export function archivedEvent(e: RecordedEvent): ArchivedEvent {
  return { seq: e.seq, time: e.time, type: e.type, actor: e.actor, data: e.data } as ArchivedEvent;
}
