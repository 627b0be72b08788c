import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Snapshot } from '../eventStore.js';
import { writeFileAtomic } from './atomicFile.js';
import { CorruptLogError, isNotFound } from './storeErrors.js';

/**
 * `<projectDir>/snapshots/<seq, 20 digits>.snap`, one file per snapshot, written atomically.
 * Layout: magic | u32 crc32(rest) | u32 timeLength | time (utf8) | data.
 */
const MAGIC = Buffer.from('LHBSNAP1', 'latin1');
const NAME = /^(\d{20})\.snap$/;

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
  await writeFileAtomic(join(snapshotDir(projectDir), `${String(snapshot.seq).padStart(20, '0')}.snap`), Buffer.concat([header, rest]));
}

export async function loadSnapshotFile(projectDir: string, atOrBefore: number): Promise<Snapshot | undefined> {
  let names: string[];
  try {
    names = await readdir(snapshotDir(projectDir));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  let best: { seq: number; name: string } | undefined;
  for (const name of names) {
    const seq = Number(NAME.exec(name)?.[1] ?? Number.NaN);
    if (seq <= atOrBefore && (!best || seq > best.seq)) best = { seq, name };
  }
  if (!best) return undefined;
  const path = join(snapshotDir(projectDir), best.name);
  const file = await readFile(path);
  const rest = file.subarray(MAGIC.length + 4);
  if (!file.subarray(0, MAGIC.length).equals(MAGIC) || file.length < MAGIC.length + 8 || crc32(rest) !== file.readUInt32LE(MAGIC.length)) {
    throw new CorruptLogError(`${path}: snapshot is damaged (bad header or checksum)`);
  }
  const timeLength = rest.readUInt32LE(0);
  return { seq: best.seq, time: rest.subarray(4, 4 + timeLength).toString('utf8'), data: rest.subarray(4 + timeLength) };
}
