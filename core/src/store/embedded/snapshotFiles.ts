import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Snapshot } from '../eventStore.js';
import { writeFileAtomic } from '../../fs/atomicFile.js';
import { listSeqFiles, seqFileName } from './seqFiles.js';
import { CorruptLogError, isNotFound } from './storeErrors.js';
import { snapshotsToPrune } from '../snapshotRetention.js';

/**
 * `<projectDir>/snapshots/<seq, 20 digits>.snap`, one file per snapshot, written atomically.
 * Layout: magic | u32 crc32(rest) | u32 timeLength | time (utf8) | data.
 */
const MAGIC = Buffer.from('LHBSNAP1', 'latin1');

function snapshotDir(projectDir: string): string {
  return join(projectDir, 'snapshots');
}

export async function saveSnapshotFile(projectDir: string, snapshot: Snapshot): Promise<void> {
  if (!Number.isSafeInteger(snapshot.seq) || snapshot.seq < 0) throw new RangeError(`snapshot seq must be a non-negative integer, got ${snapshot.seq}`);
  const time = Buffer.from(snapshot.time, 'utf8');
  const rest = Buffer.concat([Buffer.alloc(4), time, snapshot.data]);
  rest.writeUInt32LE(time.length, 0);
  const header = Buffer.alloc(MAGIC.length + 4);
  MAGIC.copy(header);
  header.writeUInt32LE(crc32(rest), MAGIC.length);
  await writeFileAtomic(join(snapshotDir(projectDir), fileName(snapshot.seq)), Buffer.concat([header, rest]));
  await pruneSnapshotFiles(projectDir);
}

export async function loadSnapshotFile(projectDir: string, atOrBefore: number): Promise<Snapshot | undefined> {
  // A concurrent save may prune the file chosen between listing and reading it; look again then.
  for (let attempt = 1; ; attempt++) {
    let best: number | undefined;
    for (const seq of await listSnapshotSeqs(projectDir)) {
      if (seq <= atOrBefore && (best === undefined || seq > best)) best = seq;
    }
    if (best === undefined) return undefined;
    const path = join(snapshotDir(projectDir), fileName(best));
    let file: Buffer;
    try {
      file = await readFile(path);
    } catch (error) {
      if (isNotFound(error) && attempt < 3) continue;
      throw error;
    }
    const rest = file.subarray(MAGIC.length + 4);
    if (!file.subarray(0, MAGIC.length).equals(MAGIC) || file.length < MAGIC.length + 8 || crc32(rest) !== file.readUInt32LE(MAGIC.length)) {
      throw new CorruptLogError(`${path}: snapshot is damaged (bad header or checksum)`);
    }
    const timeLength = rest.readUInt32LE(0);
    return { seq: best, time: rest.subarray(4, 4 + timeLength).toString('utf8'), data: rest.subarray(4 + timeLength) };
  }
}

function fileName(seq: number): string {
  return seqFileName(seq, '.snap');
}

function listSnapshotSeqs(projectDir: string): Promise<number[]> {
  return listSeqFiles(snapshotDir(projectDir), '.snap');
}

async function pruneSnapshotFiles(projectDir: string): Promise<void> {
  for (const seq of snapshotsToPrune(await listSnapshotSeqs(projectDir))) {
    await rm(join(snapshotDir(projectDir), fileName(seq)), { force: true });
  }
}
