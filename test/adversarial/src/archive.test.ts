/**
 * The archive door: hostile archives handed to `importProject` (what `lighthouse-bridge import` and
 * `spec.restoreFrom` run). Rows are damaged archives (bytes cut, flipped, added) and forged ones
 * whose every checksum was recomputed, so only the meaning can give them away. Each row asserts the
 * exact `ArchiveError` problem and message, that the target store's files are byte for byte what
 * they were, and that the spool directory is empty again.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before } from 'node:test';
import { ArchiveError, importProject, openStore, type ArchiveProblem, type EventStore, type ProjectId } from '@lighthouse-bridge/core';
import { exportToBuffer, SEED_EPOCH_MS, seedHistory } from '@lighthouse-bridge/core/testing';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { door, type Case } from './table.js';

interface ArchiveCase extends Case {
  /** The hostile archive, made from a valid one. */
  make(valid: Buffer): Buffer;
  /** Into the non-empty project `busy` (head 3) instead of an empty one. */
  busy?: boolean;
  append?: boolean;
  problem: ArchiveProblem;
  message: RegExp;
}

interface Rec {
  kind: string;
  body: Buffer;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const MAGIC = Buffer.from('lighthouse-bridge-archive 1\n');

/** The records of a valid archive, split without the code under test. */
function split(archive: Buffer): Rec[] {
  const out: Rec[] = [];
  for (let at = MAGIC.length; at < archive.length; ) {
    const eol = archive.indexOf(0x0a, at);
    const [kind = '', length = '0'] = archive.subarray(at, eol).toString('latin1').split(' ');
    out.push({ kind, body: archive.subarray(eol + 1, eol + 1 + Number(length)) });
    at = eol + 2 + Number(length);
  }
  return out;
}

/** A copy of `archive` whose first record line of `kind` names `to` instead (found by walking the records, never by bytes a blob may hold). */
function renameFirst(archive: Buffer, kind: string, to: string): Buffer {
  for (let at = MAGIC.length; at < archive.length; ) {
    const eol = archive.indexOf(0x0a, at);
    const [found = '', length = '0'] = archive.subarray(at, eol).toString('latin1').split(' ');
    if (found === kind) {
      const copy = Buffer.from(archive);
      copy.write(to, at, 'latin1');
      return copy;
    }
    at = eol + 2 + Number(length);
  }
  throw new Error(`no ${kind} record`);
}

/** Writes records back with every checksum recomputed (what a forger would do); `keepTrailer` leaves T's body as given. */
function forge(records: Rec[], keepTrailer = false): Buffer {
  const parts: Buffer[] = [MAGIC];
  const whole = createHash('sha256').update(MAGIC);
  for (const r of records) {
    let body = r.body;
    if (r.kind === 'T' && !keepTrailer) body = Buffer.from(JSON.stringify({ ...(JSON.parse(body.toString()) as object), archive: whole.copy().digest('hex') }));
    const line = Buffer.from(`${r.kind} ${body.length} ${sha(body)}\n`);
    whole.update(line);
    parts.push(line, body, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** A forged archive with one change made to the records. */
const forged =
  (change: (records: Rec[]) => void, keepTrailer = false) =>
  (valid: Buffer): Buffer => {
    const records = split(valid);
    change(records);
    return forge(records, keepTrailer);
  };

const json = (r: Rec): Record<string, unknown> => JSON.parse(r.body.toString()) as Record<string, unknown>;
const setJson = (r: Rec, value: unknown): void => {
  r.body = Buffer.from(JSON.stringify(value));
};
const first = (records: Rec[], kind: string): Rec => records.find((r) => r.kind === kind)!;
const firstEvents = (records: Rec[]): Array<Record<string, unknown>> => JSON.parse(first(records, 'E').body.toString()) as Array<Record<string, unknown>>;
/** Changes the first events record's events. */
const events = (change: (list: Array<Record<string, unknown>>) => void) =>
  forged((records) => {
    const list = firstEvents(records);
    change(list);
    setJson(first(records, 'E'), list);
  });
const nthEvent = (list: Array<Record<string, unknown>>, type: string): Record<string, unknown> => list.find((e) => e['type'] === type)!;
const flip = (at: (valid: Buffer) => number) => (valid: Buffer): Buffer => {
  const copy = Buffer.from(valid);
  copy[at(valid)]! ^= 0x04;
  return copy;
};
/** A few bytes into the first record of that kind (found by its line: blob bytes may hold "\nC "). */
const bodyOf = (kind: string) => (valid: Buffer): number => {
  const line = new RegExp(`^${kind} \\d+ [0-9a-f]{64}$`, 'm').exec(valid.toString('latin1'))!;
  return line.index + line[0].length + 3;
};
const trailerAt = (valid: Buffer): number => valid.lastIndexOf('\nT ') + 1;

const table: ArchiveCase[] = [
  { name: 'empty input', make: () => Buffer.alloc(0), problem: 'not-an-archive', message: /not a lighthouse-bridge archive/ },
  { name: 'random bytes', make: () => Buffer.from('\x89PNG\r\n\x1a\n' + 'x'.repeat(300), 'latin1'), problem: 'not-an-archive', message: /not a lighthouse-bridge archive/ },
  { name: 'gzip of an archive', make: (v) => Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), v]), problem: 'not-an-archive', message: /not a lighthouse-bridge archive/ },
  { name: 'magic line with CRLF', make: (v) => Buffer.concat([Buffer.from('lighthouse-bridge-archive 1\r\n'), v.subarray(MAGIC.length)]), problem: 'not-an-archive', message: /not a lighthouse-bridge archive/ },
  { name: 'version 2', make: (v) => Buffer.concat([Buffer.from('lighthouse-bridge-archive 2\n'), v.subarray(MAGIC.length)]), problem: 'version', message: /version 2 is not supported: this lighthouse-bridge reads version 1/ },
  { name: 'version 0', make: (v) => Buffer.concat([Buffer.from('lighthouse-bridge-archive 0\n'), v.subarray(MAGIC.length)]), problem: 'version', message: /version 0 is not supported/ },
  { name: 'magic line only', make: () => MAGIC, problem: 'truncated', message: /truncated at byte 28: it ends without its trailer/ },
  { name: 'cut inside a record line', make: (v) => v.subarray(0, MAGIC.length + 5), problem: 'truncated', message: /ends inside a record line/ },
  { name: 'cut inside a blob', make: (v) => v.subarray(0, bodyOf('B')(v) + 100), problem: 'truncated', message: /ends inside a B record/ },
  { name: 'cut inside the events', make: (v) => v.subarray(0, bodyOf('E')(v) + 100), problem: 'truncated', message: /ends inside a E record/ },
  { name: 'cut before the trailer', make: (v) => v.subarray(0, trailerAt(v)), problem: 'truncated', message: /ends without its trailer/ },
  { name: 'cut the last byte', make: (v) => v.subarray(0, v.length - 1), problem: 'truncated', message: /ends inside a T record/ },
  { name: 'a blob byte flipped', make: flip(bodyOf('B')), problem: 'tampered', message: /sha256 of the B record at byte \d+ does not match its content/ },
  { name: 'an event byte flipped', make: flip(bodyOf('E')), problem: 'tampered', message: /sha256 of the E record at byte \d+ does not match/ },
  { name: 'a header byte flipped', make: flip(bodyOf('H')), problem: 'tampered', message: /sha256 of the H record at byte 28 does not match/ },
  { name: 'a checkpoint byte flipped', make: flip(bodyOf('C')), problem: 'tampered', message: /sha256 of the C record/ },
  { name: 'a trailer byte flipped', make: flip((v) => v.length - 10), problem: 'tampered', message: /sha256 of the T record/ },
  { name: 'a length one too long', make: (v) => Buffer.from(v.toString('latin1').replace(/^H (\d+) /m, (_, n: string) => `H ${Number(n) + 1} `), 'latin1'), problem: 'tampered', message: /the H record is not \d+ bytes long/ },
  { name: 'a length of a terabyte', make: (v) => Buffer.from(v.toString('latin1').replace(/^B \d+ /m, 'B 999999999999 '), 'latin1'), problem: 'tampered', message: /a 999999999999-byte record is larger than any archive holds/ },
  { name: 'a checksum in upper case', make: (v) => Buffer.from(v.toString('latin1').replace(/^(H \d+ )([0-9a-f]{64})$/m, (_, a: string, h: string) => a + h.toUpperCase()), 'latin1'), problem: 'tampered', message: /is not a record line/ },
  { name: 'an unknown record kind', make: (v) => renameFirst(v, 'C', 'X'), problem: 'tampered', message: /"X \d+ [0-9a-f]+" is not a record line/ },
  { name: 'a line of 200 bytes', make: () => Buffer.concat([MAGIC, Buffer.from('H'.repeat(200))]), problem: 'tampered', message: /no record line there/ },
  { name: 'a byte after the trailer', make: (v) => Buffer.concat([v, Buffer.from('\n')]), problem: 'tampered', message: /bytes follow its trailer/ },
  { name: 'two archives back to back', make: (v) => Buffer.concat([v, v]), problem: 'tampered', message: /bytes follow its trailer/ },
  {
    name: 'two blobs swapped, checksums intact',
    make: (v) => {
      const records = split(v);
      const i = records.findIndex((r) => r.kind === 'B');
      [records[i], records[i + 1]] = [records[i + 1]!, records[i]!];
      return forge(records, true);
    },
    problem: 'tampered',
    message: /whole-archive sha256 in the trailer does not match its records/,
  },
  { name: 'forged: no header', make: forged((r) => r.splice(0, 1)), problem: 'inconsistent', message: /the first record is B, not the header/ },
  { name: 'forged: a second header', make: forged((r) => r.splice(2, 0, r[0]!)), problem: 'inconsistent', message: /a second header/ },
  { name: 'forged: header without a range', make: forged((r) => setJson(r[0]!, { ...json(r[0]!), fromSeq: 'one' })), problem: 'inconsistent', message: /header lacks a project, a range of events or a checkpoint interval/ },
  { name: 'forged: header is not JSON', make: forged((r) => (r[0]!.body = Buffer.from('{project'))), problem: 'inconsistent', message: /its header record is not JSON/ },
  { name: 'forged: starts at event 5', make: forged((r) => setJson(r[0]!, { ...json(r[0]!), fromSeq: 5 })), problem: 'target', message: /archive starts at event 5: an empty project takes only an archive from event 1/ },
  { name: 'forged: an event left out', make: events((l) => l.splice(3, 1)), problem: 'inconsistent', message: /event 4 is missing \(found 5\)/ },
  { name: 'forged: an event twice', make: events((l) => l.splice(3, 0, l[3]!)), problem: 'inconsistent', message: /event 5 is missing \(found 4\)/ },
  { name: 'forged: time goes back', make: events((l) => (l[5]!['time'] = '2020-01-01T00:00:00.000Z')), problem: 'inconsistent', message: /event 6 at 2020-01-01T00:00:00.000Z is earlier than event 5/ },
  { name: 'forged: time without milliseconds', make: events((l) => (l[0]!['time'] = '2025-03-01T09:00:00Z')), problem: 'inconsistent', message: /event 1 has no RFC 3339 time/ },
  { name: 'forged: time not a time', make: events((l) => (l[0]!['time'] = 'yesterday')), problem: 'inconsistent', message: /event 1 has no RFC 3339 time/ },
  { name: 'forged: an event without actor', make: events((l) => delete l[2]!['actor']), problem: 'inconsistent', message: /event 3 lacks a type, actor or data/ },
  { name: 'forged: data null', make: events((l) => (l[2]!['data'] = null)), problem: 'inconsistent', message: /event 3 lacks a type, actor or data/ },
  { name: 'forged: events not JSON', make: forged((r) => (first(r, 'E').body = Buffer.from('[{"seq":1'))), problem: 'inconsistent', message: /its events record is not JSON/ },
  { name: 'forged: events an object', make: forged((r) => setJson(first(r, 'E'), { seq: 1 })), problem: 'inconsistent', message: /an events record is not a list/ },
  { name: 'forged: a blob left out', make: forged((r) => r.splice(r.findIndex((x) => x.kind === 'B'), 1)), problem: 'inconsistent', message: /event \d+ names blob [0-9a-f]{64}, which the archive does not carry before it/ },
  { name: 'forged: a file names no hash', make: events((l) => ((nthEvent(l, 'FileWritten')['data'] as Record<string, unknown>)['hash'] = '../../etc/passwd')), problem: 'inconsistent', message: /names "\.\.\/\.\.\/etc\/passwd", which is not a blob hash/ },
  { name: 'forged: a context package with files not a list', make: events((l) => ((nthEvent(l, 'ContextPackageCreated')['data'] as Record<string, unknown>)['files'] = 'all')), problem: 'inconsistent', message: /does not name its blobs as a list of hashes/ },
  { name: 'forged: a wrong tree hash', make: forged((r) => setJson(first(r, 'C'), { ...json(first(r, 'C')), tree: 'f'.repeat(64) })), problem: 'inconsistent', message: /the tree hash at event 1000 is [0-9a-f]{64} from the events, but the archive says f{64}/ },
  { name: 'forged: a checkpoint left out', make: forged((r) => r.splice(r.findIndex((x) => x.kind === 'C'), 1)), problem: 'inconsistent', message: /the checkpoint for event 1000 is missing/ },
  { name: 'forged: a checkpoint where none is due', make: forged((r) => r.splice(2, 0, { kind: 'C', body: Buffer.from('{"seq":0,"tree":"x"}') })), problem: 'inconsistent', message: /a checkpoint for event 0 where none is due/ },
  { name: 'forged: trailer counts an event more', make: forged((r) => setJson(r[r.length - 1]!, { ...json(r[r.length - 1]!), events: Number(json(r[r.length - 1]!)['events']) + 1 })), problem: 'inconsistent', message: /the trailer counts \d+ events/ },
  { name: 'forged: header ends before the events do', make: forged((r) => setJson(r[0]!, { ...json(r[0]!), toSeq: 10 })), problem: 'inconsistent', message: /checkpoint for event 1000 is missing|past the header's last event 10/ },
  { name: 'a non-empty target', busy: true, make: (v) => v, problem: 'target', message: /default\/busy is not empty \(its head is event 3\): import only into an empty project, or append \(--append\) an archive that starts at event 4/ },
  { name: 'append an archive of another project onto head 3', busy: true, append: true, make: (v) => v, problem: 'target', message: /event 1 of the archive is not event 1 of default\/busy: an appended archive must start at event 4/ },
  { name: 'append an archive from event 5 onto head 3', busy: true, append: true, make: forged((r) => setJson(r[0]!, { ...json(r[0]!), fromSeq: 5 })), problem: 'target', message: /the archive starts at event 5, but default\/busy's head is event 3: an appended archive must start at event 4/ },
  { name: 'append an archive that ends before head 3', busy: true, append: true, make: forged((r) => (r.splice(1), r.push({ kind: 'T', body: Buffer.from('{"events":0,"blobs":0,"head":0}') }), setJson(r[0]!, { ...json(r[0]!), toSeq: 0 }))), problem: 'target', message: /the archive ends at event 0, before default\/busy's head, event 3: there is nothing to append/ },
];

let tmp: { dir: string; remove: () => Promise<void> };
let valid: Buffer;
let target: EventStore;
let fresh = 0;

/** Every file under `dir` with a hash of its bytes. */
async function files(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      out.set(path, sha(await readFile(path)));
    }
  }
  return out;
}

before(async () => {
  tmp = await tempDir('lhb-adv-archive-');
  const source = await openStore(`file://${join(tmp.dir, 'source')}`);
  await seedHistory(source, { namespace: 'default', name: 'src' }, 300);
  valid = await exportToBuffer(source, { namespace: 'default', name: 'src' });
  await source.close();
  target = await openStore(`file://${join(tmp.dir, 'target')}`);
  // Another history: seeded at the same instant the source's would repeat its first events.
  await seedHistory(target, { namespace: 'default', name: 'busy' }, 2, SEED_EPOCH_MS + 7);
  await mkdir(join(tmp.dir, 'spool'));
});
after(async () => {
  await target.close();
  await tmp.remove();
});

door('archive import', table, async (row) => {
  const project: ProjectId = row.busy ? { namespace: 'default', name: 'busy' } : { namespace: 'default', name: `fresh${++fresh}` };
  const before = await files(join(tmp.dir, 'target'));
  await assert.rejects(importProject(target, project, Readable.from([row.make(valid)]), { append: row.append ?? false, spoolDir: join(tmp.dir, 'spool') }), (error: unknown) => {
    assert.ok(error instanceof ArchiveError, `not an ArchiveError: ${String(error)}`);
    assert.equal(error.problem, row.problem, error.message);
    assert.match(error.message, row.message);
    return true;
  });
  assert.deepEqual(await files(join(tmp.dir, 'target')), before, 'the target store changed');
  assert.deepEqual(await readdir(join(tmp.dir, 'spool')), [], 'the spool was left behind');
});
