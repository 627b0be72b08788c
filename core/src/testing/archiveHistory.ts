import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { encodeSnapshot } from '../aggregate/snapshotCodec.js';
import type { NewEvent, RecordedEvent } from '../events/events.js';
import type { ProjectId } from '../events/projectId.js';
import { seqAt, stateAt } from '../projection/replay.js';
import type { EventStore } from '../store/eventStore.js';
import { exportProject, type ExportOptions } from '../archive/export.js';
import { blobsOf } from '../archive/format.js';
import { importProject, type ImportOptions } from '../archive/import.js';
import { treeHash } from '../archive/treeHash.js';

/** Where seeded history starts; each append is a second later than the last. */
export const SEED_EPOCH_MS = Date.parse('2025-03-01T09:00:00.000Z');

/**
 * Appends `appends` appends of 1-6 events each, of every kind a project records (EventLost
 * included), with given times a second apart so history by time has something to tell apart.
 * Every 50th file is 256 KiB; contents repeat, so blobs are shared between events.
 */
export async function seedHistory(store: EventStore, project: ProjectId, appends: number, startMs = SEED_EPOCH_MS): Promise<number> {
  let head = await store.head(project);
  const contents = Array.from({ length: 40 }, (_, i) => randomBytes(i % 20 === 0 ? 256 * 1024 : 1 + i * 37));
  const hashes = await Promise.all(contents.map((c) => store.putBlob(project, c)));
  for (let a = 0; a < appends; a++) {
    const events: NewEvent[] = [];
    const n = 1 + (a % 6);
    for (let k = 0; k < n; k++) {
      const i = a * 6 + k;
      const dir = `d${i % 7}`;
      const hash = hashes[i % hashes.length]!;
      const size = contents[i % contents.length]!.length;
      switch (i % 9) {
        case 0:
          events.push({ type: 'DirectoryCreated', actor: 'seed', data: { path: dir, mode: 0o755, mtimeMs: startMs + i } });
          break;
        case 1:
        case 2:
          events.push({ type: 'FileWritten', actor: `agent-${i % 3}`, data: { path: `${dir}/f${i % 40}.txt`, hash, size, mode: 0o644, mtimeMs: startMs + i } });
          break;
        case 3:
          events.push({ type: 'SymlinkCreated', actor: 'seed', data: { path: `${dir}/link${i % 5}`, target: `f${i % 40}.txt`, mtimeMs: startMs + i } });
          break;
        case 4:
          events.push({ type: 'PathMoved', actor: 'seed', data: { from: `${dir}/f${(i + 1) % 40}.txt`, to: `${dir}/moved${i % 11}.txt` } });
          break;
        case 5:
          events.push({ type: 'PathDeleted', actor: 'seed', data: { path: `${dir}/link${i % 5}` } });
          break;
        case 6:
          events.push({ type: 'AttributesChanged', actor: 'seed', data: { path: `${dir}/f${(i - 4) % 40}.txt`, mode: 0o600, mtimeMs: startMs - i } });
          break;
        case 7:
          events.push({ type: 'AnnotationAdded', actor: 'reviewer', data: { path: `${dir}`, id: String(i), text: `note ${i} ✓`, tags: ['t'] } });
          break;
        default:
          events.push(
            i % 2 === 0
              ? { type: 'EventLost', actor: 'system', data: { file: 'log/00000001.seg', offset: i, bytes: 17, reason: 'torn record', savedAs: `cut/${i}` } }
              : { type: 'ContextPackageCreated', actor: 'seed', data: { name: `pkg${i}`, files: [{ path: 'x', hash, size }] } },
          );
      }
    }
    await store.append(project, events, { expectedVersion: head, time: new Date(startMs + a * 1000).toISOString() });
    head += events.length;
  }
  return head;
}

/** An archive of the project in memory. */
export async function exportToBuffer(store: EventStore, project: ProjectId, options?: ExportOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  await exportProject(store, project, out, options);
  return Buffer.concat(chunks);
}

export function importFromBuffer(store: EventStore, project: ProjectId, archive: Uint8Array, options?: ImportOptions): ReturnType<typeof importProject> {
  return importProject(store, project, Readable.from([Buffer.from(archive)]), options);
}

async function allEvents(store: EventStore, project: ProjectId): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for (;;) {
    const page = await store.read(project, { from: out.length + 1, limit: 5000 });
    if (page.length === 0) return out;
    out.push(...page);
  }
}

/**
 * Asserts two projects have one history: the same events (seq, time, type, actor, data), the
 * same whole projection and tree hash at each of `seqs`, the same sequence at each instant in
 * `times`, and the same blobs.
 */
export async function assertSameHistory(a: [EventStore, ProjectId], b: [EventStore, ProjectId], seqs: number[], times: Date[]): Promise<void> {
  const [left, right] = [await allEvents(...a), await allEvents(...b)];
  assert.equal(right.length, left.length, 'heads differ');
  assert.deepEqual(right, left);
  for (const seq of seqs) {
    const [x, y] = [await stateAt(...a, seq), await stateAt(...b, seq)];
    assert.equal(treeHash(y), treeHash(x), `tree hash at ${seq}`);
    assert.deepEqual(Buffer.from(encodeSnapshot(y)), Buffer.from(encodeSnapshot(x)), `state at ${seq}`);
  }
  for (const time of times) assert.equal(await seqAt(...b, time), await seqAt(...a, time), `seq at ${time.toISOString()}`);
  for (const hash of new Set(left.flatMap(blobsOf))) assert.deepEqual(await b[0].getBlob(b[1], hash), await a[0].getBlob(a[1], hash), `blob ${hash}`);
}
