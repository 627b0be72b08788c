import { evolve } from '../aggregate/evolve.js';
import type { ProjectState } from '../aggregate/state.js';
import type { RecordedEvent } from '../events/events.js';
import { isContentHash } from '../events/contentHash.js';
import { parseRfc3339 } from '../time/rfc3339.js';
import { ArchiveError, blobsOf, type ArchiveHeader, type ArchiveTrailer, type Checkpoint } from './format.js';
import type { ArchiveRecord } from './reader.js';
import { treeHash } from './treeHash.js';

/** What a pass over an archive does with what it finds; every hook may refuse by throwing. */
export interface ArchiveVisitor {
  blob?(hash: string, content: Buffer): Promise<void>;
  /** One E record's events, already applied to the state. */
  events?(events: RecordedEvent[], state: ProjectState): Promise<void>;
  checkpoint?(checkpoint: Checkpoint, state: ProjectState): Promise<void>;
  /** After each record, with the number of events so far. */
  progress?(events: number): void;
}

export interface ArchiveSummary {
  header: ArchiveHeader;
  trailer: ArchiveTrailer;
  checkpoints: Checkpoint[];
  blobs: Set<string>;
}

/**
 * Checks what the reader cannot: the header comes first and the trailer last with the right
 * counts and whole-archive hash; events are dense from the header's `fromSeq` on top of the state
 * `start` gives for that header (or refuses it with), their times never go back, every blob an
 * event names came before it, and each checkpoint's tree hash is what the events give. Applies
 * the events to that state in place.
 */
export async function interpretArchive(
  records: AsyncIterable<ArchiveRecord>,
  start: (header: ArchiveHeader) => Promise<ProjectState>,
  visitor: ArchiveVisitor = {},
): Promise<ArchiveSummary> {
  let header: ArchiveHeader | undefined;
  let state: ProjectState | undefined;
  const blobs = new Set<string>();
  const checkpoints: Checkpoint[] = [];
  let events = 0;
  let checkpointDue: number | undefined;
  for await (const record of records) {
    if (!header || !state) {
      if (record.kind !== 'H') throw inconsistent(`the first record is ${record.kind}, not the header`);
      header = parseHeader(record.body);
      state = await start(header);
      if (header.fromSeq !== state.seq + 1) throw inconsistent(`it starts at event ${header.fromSeq}, not ${state.seq + 1}`);
      continue;
    }
    if (checkpointDue !== undefined && record.kind !== 'C') throw inconsistent(`the checkpoint for event ${checkpointDue} is missing`);
    switch (record.kind) {
      case 'H':
        throw inconsistent('a second header');
      case 'B': {
        // The reader checked the body against the record's sha256: that is the blob's name.
        const hash = record.sha256;
        blobs.add(hash);
        await visitor.blob?.(hash, record.body);
        break;
      }
      case 'E': {
        const page = parseEvents(record.body, state, blobs);
        if (page.length === 0 || state.seq > header.toSeq) throw inconsistent(`an events record past the header's last event ${header.toSeq}`);
        events += page.length;
        await visitor.events?.(page, state);
        if (state.seq % header.checkpointEvery === 0 || state.seq === header.toSeq) checkpointDue = state.seq;
        break;
      }
      case 'C': {
        const checkpoint = parseJson(record.body, 'checkpoint') as Checkpoint;
        if (checkpoint.seq !== checkpointDue || checkpoint.seq !== state.seq) throw inconsistent(`a checkpoint for event ${checkpoint.seq} where none is due`);
        const tree = treeHash(state);
        if (checkpoint.tree !== tree) throw inconsistent(`the tree hash at event ${checkpoint.seq} is ${tree} from the events, but the archive says ${String(checkpoint.tree)}`);
        checkpoints.push({ seq: checkpoint.seq, tree });
        checkpointDue = undefined;
        await visitor.checkpoint?.(checkpoint, state);
        break;
      }
      case 'T': {
        const trailer = parseJson(record.body, 'trailer') as ArchiveTrailer;
        if (trailer.archive !== record.archiveSoFar) throw new ArchiveError('tampered', 'archive tampered: the whole-archive sha256 in the trailer does not match its records');
        if (trailer.events !== events || trailer.blobs !== blobs.size || trailer.head !== header.toSeq || state.seq !== header.toSeq) {
          throw inconsistent(`the trailer counts ${trailer.events} events, ${trailer.blobs} blobs up to event ${trailer.head}; the archive holds ${events} events, ${blobs.size} blobs up to event ${state.seq}`);
        }
        return { header, trailer, checkpoints, blobs };
      }
    }
    visitor.progress?.(events);
  }
  // The reader ends only after a trailer or by throwing.
  throw new ArchiveError('truncated', 'archive truncated: it ends without its trailer');
}

function inconsistent(what: string): ArchiveError {
  return new ArchiveError('inconsistent', `archive inconsistent: ${what}`);
}

function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw inconsistent(`its ${what} record is not JSON`);
  }
}

const isSeq = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

function parseHeader(body: Buffer): ArchiveHeader {
  const h = parseJson(body, 'header') as Partial<ArchiveHeader> | null;
  if (!h || typeof h.project !== 'string' || !isSeq(h.fromSeq) || h.fromSeq < 1 || !isSeq(h.toSeq) || h.toSeq < h.fromSeq - 1 || !isSeq(h.checkpointEvery) || h.checkpointEvery < 1) {
    throw inconsistent('its header lacks a project, a range of events or a checkpoint interval');
  }
  return h as ArchiveHeader;
}

function parseEvents(body: Buffer, state: ProjectState, blobs: Set<string>): RecordedEvent[] {
  const page = parseJson(body, 'events');
  if (!Array.isArray(page)) throw inconsistent('an events record is not a list');
  for (const e of page as Array<Partial<RecordedEvent> | null>) {
    const seq = state.seq + 1;
    if (!e || e.seq !== seq) throw inconsistent(`event ${seq} is missing (found ${String(e?.seq)})`);
    if (typeof e.type !== 'string' || typeof e.actor !== 'string' || typeof e.data !== 'object' || e.data === null) throw inconsistent(`event ${seq} lacks a type, actor or data`);
    if (typeof e.time !== 'string' || !isCanonicalTime(e.time)) throw inconsistent(`event ${seq} has no RFC 3339 time`);
    if (e.time < state.time) throw inconsistent(`event ${seq} at ${e.time} is earlier than event ${state.seq} at ${state.time}`);
    let named: string[];
    try {
      named = blobsOf(e as RecordedEvent);
    } catch {
      throw inconsistent(`event ${seq} (${e.type}) does not name its blobs as a list of hashes`);
    }
    for (const hash of named) {
      if (typeof hash !== 'string' || !isContentHash(hash)) throw inconsistent(`event ${seq} names "${String(hash)}", which is not a blob hash`);
      if (!blobs.has(hash)) throw inconsistent(`event ${seq} names blob ${hash}, which the archive does not carry before it`);
    }
    evolve(state, e as RecordedEvent);
  }
  return page as RecordedEvent[];
}

/** A store time as the stores write it: RFC 3339 in exactly `toISOString`'s form. */
function isCanonicalTime(time: string): boolean {
  return parseRfc3339(time)?.toISOString() === time;
}
