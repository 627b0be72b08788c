import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { decodeSnapshot, encodeSnapshot } from '../aggregate/snapshotCodec.js';
import { contentHash } from '../events/contentHash.js';
import type { ProjectState } from '../aggregate/state.js';
import type { RecordedEvent } from '../events/events.js';
import { formatProjectId, type ProjectId } from '../events/projectId.js';
import { replayInto, stateBefore } from '../projection/replay.js';
import type { EventStore } from '../store/eventStore.js';
import type { ArchiveProgress } from './export.js';
import { ArchiveError, type ArchiveHeader } from './format.js';
import { interpretArchive, type ArchiveSummary } from './interpret.js';
import { readArchive } from './reader.js';
import { treeHash } from './treeHash.js';

export interface ImportProgress extends ArchiveProgress {
  /** Verifying the archive (nothing written yet), appending it, or checking the target after. */
  phase: 'verifying' | 'importing' | 'checking';
}

export interface ImportOptions {
  /**
   * Allow a non-empty target when the archive continues its head: it starts at the event after
   * it, or earlier with the target's own events up to it (so re-running an import that stopped part
   * way, or one that finished, completes it and changes nothing else).
   */
  append?: boolean;
  /** Where the archive is spooled while it is verified; default the OS temp directory. */
  spoolDir?: string;
  onProgress?: (progress: ImportProgress) => void;
}

export interface ImportResult {
  head: number;
  events: number;
  blobs: number;
}

/**
 * Imports an archive (format.ts) into `project`, all or nothing: a first pass reads the whole
 * input, spooling it to a temporary file, and checks every checksum, the sequence, the times,
 * the blobs and the tree hashes against the target as it is, writing nothing; only then a second
 * pass over the spooled copy puts the blobs and appends the events (each append expecting the
 * head the previous one left, keeping the archive's times), and a third replays the target from
 * its log and checks the head, the tree hash at every checkpoint and every blob.
 */
export async function importProject(store: EventStore, project: ProjectId, input: NodeJS.ReadableStream, options: ImportOptions = {}): Promise<ImportResult> {
  const spool = await mkdtemp(join(options.spoolDir ?? tmpdir(), 'lhb-import-'));
  try {
    const file = join(spool, 'archive');
    const targetHead = await store.head(project);
    const progress = (phase: ImportProgress['phase'], bytes: () => number) => (events: number) => options.onProgress?.({ phase, events, bytes: bytes() });

    // Pass 1: verify everything, write nothing to the store.
    const handle = await open(file, 'w');
    let spooled = 0;
    let summary: ArchiveSummary;
    try {
      const records = readArchive(input, async (chunk) => {
        spooled += chunk.length;
        await handle.write(chunk);
      });
      summary = await interpretArchive(
        records,
        async (header) => {
          refuseTarget(project, header, targetHead, options.append ?? false);
          return startState(store, project, header);
        },
        {
          events: (events) => requireSameAsTarget(store, project, events, targetHead),
          progress: progress('verifying', () => spooled),
        },
      );
    } finally {
      await handle.close();
    }

    // Pass 2: the spooled copy, into the store.
    let read = 0;
    const appender = new Appender(store, project, targetHead);
    await interpretArchive(
      readArchive(createReadStream(file), async (chunk) => {
        read += chunk.length;
      }),
      (header) => startState(store, project, header),
      {
        blob: (hash, content) => appender.putBlob(hash, content),
        events: (events) => appender.append(events),
        checkpoint: async (checkpoint, state) => {
          if (checkpoint.seq > targetHead && checkpoint.seq % summary.header.checkpointEvery === 0) {
            await store.saveSnapshot(project, { seq: state.seq, time: state.time, data: encodeSnapshot(state) });
          }
        },
        progress: progress('importing', () => read),
      },
    ).finally(() => appender.settle());

    // Pass 3: what a reader of the target now gets.
    options.onProgress?.({ phase: 'checking', events: summary.trailer.events, bytes: spooled });
    await checkTarget(store, project, summary);
    return { head: summary.trailer.head, events: summary.trailer.head - Math.max(targetHead, summary.header.fromSeq - 1), blobs: summary.trailer.blobs };
  } finally {
    await rm(spool, { recursive: true, force: true });
  }
}

/** The target as of the event before the archive's first. */
async function startState(store: EventStore, project: ProjectId, header: ArchiveHeader): Promise<ProjectState> {
  return stateBefore(store, project, header.fromSeq);
}

/**
 * An empty target takes an archive from event 1. A non-empty one, only with `append`, an archive
 * that starts at the event after its head — or earlier, when the events it shares with the target
 * are the same (`requireSameAsTarget`): then the import resumes one that stopped part way.
 */
function refuseTarget(project: ProjectId, header: ArchiveHeader, head: number, append: boolean): void {
  const name = formatProjectId(project);
  if (head > 0 && !append) {
    throw new ArchiveError('target', `${name} is not empty (its head is event ${head}): import only into an empty project, or append (--append) an archive that starts at event ${head + 1}`);
  }
  if (header.fromSeq > head + 1) {
    throw new ArchiveError(
      'target',
      head > 0
        ? `the archive starts at event ${header.fromSeq}, but ${name}'s head is event ${head}: an appended archive must start at event ${head + 1}`
        : `the archive starts at event ${header.fromSeq}: an empty project takes only an archive from event 1 (append it onto a project whose head is event ${header.fromSeq - 1})`,
    );
  }
  if (header.toSeq < head) throw new ArchiveError('target', `the archive ends at event ${header.toSeq}, before ${name}'s head, event ${head}: there is nothing to append`);
}

/** Events the archive shares with the target must be the target's own (a resumed import), else it refuses. */
async function requireSameAsTarget(store: EventStore, project: ProjectId, events: RecordedEvent[], targetHead: number): Promise<void> {
  const shared = events.filter((e) => e.seq <= targetHead);
  if (shared.length === 0) return;
  const theirs = await store.read(project, { from: shared[0]!.seq, to: shared[shared.length - 1]!.seq, limit: shared.length });
  shared.forEach((e, i) => {
    const t = theirs[i];
    if (!t || !isDeepStrictEqual([t.seq, t.time, t.type, t.actor, t.data], [e.seq, e.time, e.type, e.actor, e.data])) {
      throw new ArchiveError('target', `event ${e.seq} of the archive is not event ${e.seq} of ${formatProjectId(project)}: an appended archive must start at event ${targetHead + 1}, or repeat the project's own events before it`);
    }
  });
}

/**
 * Appends events as their source recorded them: one append per run of events with one time, each
 * expecting the head the one before leaves (so a concurrent writer makes the import fail instead
 * of interleaving) and carrying that time (so history by time stays the same). A page's appends
 * are issued together: both stores keep the order and commit them as one batch (one fsync, one
 * script call) instead of one round each.
 */
class Appender {
  private readonly puts: Array<Promise<void>> = [];
  private readonly putBytes: number[] = [];

  constructor(
    private readonly store: EventStore,
    private readonly project: ProjectId,
    /** Events up to here are in the target already (checked in the first pass). */
    private readonly targetHead: number,
  ) {}

  /** Puts overlap, up to a few MiB of them; all are durable before the next append. */
  async putBlob(hash: string, content: Buffer): Promise<void> {
    const put = this.store.putBlob(this.project, content).then((named) => {
      if (named !== hash) throw new Error(`the store named blob ${hash} ${named}`);
    });
    // Awaited later (settle); until then a failure must not count as unhandled.
    put.catch(() => {});
    this.puts.push(put);
    this.putBytes.push(content.length);
    while (this.puts.length > BLOB_PUTS_IN_FLIGHT || sum(this.putBytes) > BLOB_BYTES_IN_FLIGHT) {
      this.putBytes.shift();
      await this.puts.shift();
    }
  }

  /** Waits for the blob puts still running. */
  settle(): Promise<void> {
    this.putBytes.length = 0;
    return settleAll(this.puts.splice(0));
  }

  async append(page: RecordedEvent[]): Promise<void> {
    await this.settle();
    const events = page.filter((e) => e.seq > this.targetHead);
    const appends: Array<Promise<void>> = [];
    for (let start = 0; start < events.length; ) {
      const first = events[start]!;
      let end = start + 1;
      while (end < events.length && events[end]!.time === first.time) end++;
      const batch = events.slice(start, end).map(({ type, actor, data }) => ({ type, actor, data }) as RecordedEvent);
      appends.push(
        this.store.append(this.project, batch, { expectedVersion: first.seq - 1, time: first.time }).then((recorded) => {
          if (recorded[0]?.seq !== first.seq || recorded[0].time !== first.time) {
            throw new Error(`the store recorded event ${first.seq} as event ${String(recorded[0]?.seq)} at ${String(recorded[0]?.time)}, not at ${first.time}`);
          }
        }),
      );
      start = end;
    }
    await settleAll(appends);
  }
}

const BLOB_PUTS_IN_FLIGHT = 16;
const BLOB_BYTES_IN_FLIGHT = 8 * 1024 * 1024;
const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

/** Waits for every promise (none left running behind the caller's back), then throws the first failure in order. */
async function settleAll(promises: Array<Promise<void>>): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function checkTarget(store: EventStore, project: ProjectId, summary: ArchiveSummary): Promise<void> {
  const name = formatProjectId(project);
  const differs = (what: string): ArchiveError => new ArchiveError('inconsistent', `${name} after the import: ${what}`);
  const head = await store.head(project);
  if (head !== summary.trailer.head) throw differs(`its head is event ${head}, the archive's is ${summary.trailer.head}`);
  // From the log alone (no snapshot), so the check does not trust what the import just saved...
  const state = await startState(store, project, summary.header);
  for (const checkpoint of summary.checkpoints) {
    await replayInto(store, project, state, checkpoint.seq);
    const tree = treeHash(state);
    if (tree !== checkpoint.tree) throw differs(`replaying its log gives tree hash ${tree} at event ${checkpoint.seq}, the archive ${checkpoint.tree}`);
    // ...and then each snapshot it saved gives that same tree.
    if (checkpoint.seq % summary.header.checkpointEvery !== 0) continue;
    const snapshot = await store.loadSnapshot(project, checkpoint.seq);
    if (snapshot?.seq === checkpoint.seq) {
      const fromSnapshot = treeHash(decodeSnapshot(snapshot.data));
      if (fromSnapshot !== checkpoint.tree) throw differs(`its snapshot at event ${checkpoint.seq} gives tree hash ${fromSnapshot}, the archive ${checkpoint.tree}`);
    }
  }
  for (const hash of summary.blobs) {
    const content = await store.getBlob(project, hash);
    if (!content || contentHash(content) !== hash) throw differs(`blob ${hash} is ${content ? 'damaged' : 'missing'}`);
  }
}
