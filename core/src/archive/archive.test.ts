import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import type { ProjectId } from '../events/projectId.js';
import type { EventStore } from '../store/eventStore.js';
import { openStore } from '../store/open.js';
import { exportProject } from './export.js';
import { contentHash } from '../events/contentHash.js';
import { ArchiveError, type ArchiveProblem } from './format.js';
import { importProject } from './import.js';
import { assertSameHistory, exportToBuffer, importFromBuffer, SEED_EPOCH_MS, seedHistory } from '../testing/archiveHistory.js';

let counter = 0;
const project = (): ProjectId => ({ namespace: 'archive', name: `p${++counter}-${randomBytes(3).toString('hex')}` });

let dir: { dir: string; remove: () => Promise<void> } | undefined;
let redis: RedisServer | undefined;
let cluster: RedisCluster | undefined;
const stores: EventStore[] = [];
async function store(url: string): Promise<EventStore> {
  const s = await openStore(url);
  stores.push(s);
  return s;
}

before(async () => {
  dir = await tempDir('lhb-archive-');
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster(3)]);
});
after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await Promise.all([redis?.stop(), cluster?.stop(), dir?.remove()]);
});

/** Asserts the promise rejects with an ArchiveError of that problem whose message matches. */
async function refused(promise: Promise<unknown>, problem: ArchiveProblem, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ArchiveError, `not an ArchiveError: ${String(error)}`);
    assert.equal(error.problem, problem, error.message);
    assert.match(error.message, message);
    return true;
  });
}

/** Nothing of the archive reached the target: no event and none of its blobs. */
async function untouched(target: EventStore, p: ProjectId, headBefore: number, blobHashes: string[]): Promise<void> {
  assert.equal(await target.head(p), headBefore);
  for (const hash of blobHashes) assert.equal(await target.getBlob(p, hash), undefined, `blob ${hash} was put`);
}

describe('project archives', () => {
  it('round-trips embedded -> Redis -> Redis Cluster -> embedded with equal history by sequence and by time', { timeout: 120_000 }, async () => {
    const embedded = await store(`file://${dir!.dir}/one`);
    const single = await store(redis!.url);
    const clustered = await store(cluster!.url);
    const embeddedAgain = await store(`file://${dir!.dir}/two`);
    const source = project();
    const head = await seedHistory(embedded, source, 700);
    assert.ok(head > 2000, `seeded ${head} events`);
    const seqs = [1, 2, 999, 1000, 1001, 1777, 2000, head - 1, head];
    const times = [-1, 0, 0.5, 1, 123.4, 350, 699, 699.9, 5000].map((s) => new Date(SEED_EPOCH_MS + s * 1000));

    let from: [EventStore, ProjectId] = [embedded, source];
    for (const target of [single, clustered, embeddedAgain]) {
      const archive = await exportToBuffer(...from);
      const to: [EventStore, ProjectId] = [target, project()];
      const result = await importFromBuffer(...to, archive);
      assert.equal(result.head, head);
      assert.equal(result.events, head);
      await assertSameHistory([embedded, source], to, seqs, times);
      from = to;
    }
    // The archive itself is the same whichever store it came from: records between header and trailer.
    const body = (b: Buffer): string => contentHash(b.subarray(b.indexOf('\nB ') + 1, b.lastIndexOf('\nT ')));
    assert.equal(body(await exportToBuffer(...from)), body(await exportToBuffer(embedded, source)));
  });

  it('refuses a truncated archive at any point and leaves the target untouched', { timeout: 60_000 }, async () => {
    const source = await store(redis!.url);
    const target = await store(`file://${dir!.dir}/truncated`);
    const p = project();
    await seedHistory(source, p, 300);
    const archive = await exportToBuffer(source, p);
    const hashes = [...new Set(archive.toString('latin1').match(/^B \d+ ([0-9a-f]{64})$/gm)!.map((l) => l.slice(-64)))];
    const lastRecord = archive.lastIndexOf('\nT ') + 1;
    for (const cut of [0, 10, 40, 200, Math.floor(archive.length / 3), Math.floor(archive.length / 2), lastRecord, lastRecord + 5, archive.length - 2, archive.length - 1]) {
      const t = project();
      await refused(importFromBuffer(target, t, archive.subarray(0, cut)), cut < 28 ? 'not-an-archive' : 'truncated', cut < 28 ? /not a lighthouse-bridge archive/ : /truncated at byte \d+/);
      await untouched(target, t, 0, hashes);
    }
  });

  it('refuses a tampered archive, naming the checksum that failed, and leaves the target untouched', { timeout: 60_000 }, async () => {
    const source = await store(`file://${dir!.dir}/tamper-source`);
    const target = await store(redis!.url);
    const p = project();
    await seedHistory(source, p, 200);
    const archive = await exportToBuffer(source, p);
    const text = archive.toString('latin1');
    const hashes = [...new Set(text.match(/^B \d+ ([0-9a-f]{64})$/gm)!.map((l) => l.slice(-64)))];
    // Records found by their lines: random blob bytes may hold "\nC ".
    const bodyOf = (kind: string): number => {
      const line = new RegExp(`^${kind} \\d+ [0-9a-f]{64}$`, 'm').exec(text)!;
      return line.index + line[0].length + 1;
    };
    const flip = (at: number): Buffer => {
      const copy = Buffer.from(archive);
      copy[at]! ^= 0x01;
      return copy;
    };
    const cases: Array<[string, Buffer, ArchiveProblem, RegExp]> = [
      ['a blob byte', flip(bodyOf('B') + 3), 'tampered', /sha256 of the B record at byte \d+ does not match/],
      ['an event byte', flip(bodyOf('E') + 30), 'tampered', /sha256 of the E record at byte \d+ does not match/],
      ['a checkpoint byte', flip(bodyOf('C') + 12), 'tampered', /sha256 of the C record/],
      ['a record length', Buffer.from(text.replace(/^E (\d+) /m, (_, n: string) => `E ${Number(n) + 1} `), 'latin1'), 'tampered', /E record is not \d+ bytes long|sha256 of the E record/],
      ['the version', Buffer.from(text.replace('lighthouse-bridge-archive 1\n', 'lighthouse-bridge-archive 2\n'), 'latin1'), 'version', /version 2 is not supported: this lighthouse-bridge reads version 1/],
      ['bytes after the trailer', Buffer.concat([archive, Buffer.from('x')]), 'tampered', /bytes follow its trailer/],
    ];
    // A whole record taken out (its line and body intact) is caught by the whole-archive hash.
    const c = /^C \d+ [0-9a-f]{64}$/m.exec(text)!.index;
    const cEnd = text.indexOf('\n', text.indexOf('\n', c) + 1) + 1;
    const lastE = text.lastIndexOf('\nE ') + 1;
    const withoutRecord = Buffer.concat([archive.subarray(0, c), archive.subarray(cEnd)]);
    cases.push(['a checkpoint removed', withoutRecord, 'inconsistent', /checkpoint for event \d+ is missing/]);
    // Two blobs swapped still come before their events: only the whole-archive hash tells.
    const recordEnd = (at: number): number => text.indexOf('\n', text.indexOf('\n', at) + 1 + Number(/^B (\d+)/.exec(text.slice(at))![1])) + 1;
    const b1 = text.indexOf('\nB ') + 1;
    const b2 = recordEnd(b1);
    assert.ok(text.startsWith('B ', b2), 'the archive starts with two blobs');
    const b3 = recordEnd(b2);
    const reordered = Buffer.concat([archive.subarray(0, b1), archive.subarray(b2, b3), archive.subarray(b1, b2), archive.subarray(b3)]);
    cases.push(['two blobs swapped', reordered, 'tampered', /whole-archive sha256 in the trailer does not match/]);
    const swapped = Buffer.concat([archive.subarray(0, lastE), archive.subarray(text.indexOf('\nC ', lastE) + 1)]);
    cases.push(['the last events removed', swapped, 'inconsistent', /checkpoint for event \d+ where none is due|trailer counts/]);
    for (const [what, bytes, problem, message] of cases) {
      const t = project();
      await refused(importFromBuffer(target, t, bytes), problem, message).catch((error: Error) => assert.fail(`${what}: ${error.message}`));
      await untouched(target, t, 0, hashes);
    }
  });

  it('refuses a non-empty target, appends an archive that continues its head, and refuses one that does not', { timeout: 60_000 }, async () => {
    const source = await store(cluster!.url);
    const target = await store(`file://${dir!.dir}/append`);
    const p = project();
    const head = await seedHistory(source, p, 500);
    const first = await exportToBuffer(source, p, { toSeq: 1000 });
    const rest = await exportToBuffer(source, p, { fromSeq: 1001 });
    const overlapping = await exportToBuffer(source, p, { fromSeq: 900 });
    const t = project();

    await refused(importFromBuffer(target, t, rest), 'target', /archive starts at event 1001: an empty project takes only an archive from event 1/);
    await untouched(target, t, 0, []);
    assert.equal((await importFromBuffer(target, t, first)).head, 1000);
    await refused(importFromBuffer(target, t, first), 'target', /is not empty \(its head is event 1000\).*--append.*event 1001/);
    const other = project();
    await seedHistory(source, other, 500, SEED_EPOCH_MS + 1);
    await refused(importFromBuffer(target, t, await exportToBuffer(source, other, { fromSeq: 900 }), { append: true }), 'target', /event 900 of the archive is not event 900 of archive\/p\d+-\w+: an appended archive must start at event 1001/);
    await refused(importFromBuffer(target, t, await exportToBuffer(source, p, { fromSeq: 900, toSeq: 950 }), { append: true }), 'target', /the archive ends at event 950, before .* head, event 1000/);
    assert.equal(await target.head(t), 1000);
    const appended = await importFromBuffer(target, t, rest, { append: true });
    assert.deepEqual(appended, { head, events: head - 1000, blobs: appended.blobs });
    await assertSameHistory([source, p], [target, t], [999, 1000, 1001, head], [new Date(SEED_EPOCH_MS + 250_000)]);

    // An import that stopped part way (the store failed) is finished by running it again with append.
    const resumed = project();
    await importFromBuffer(target, resumed, first);
    assert.equal((await importFromBuffer(target, resumed, overlapping, { append: true })).events, head - 1000);
    assert.equal((await importFromBuffer(target, resumed, overlapping, { append: true })).events, 0, 'a second run changes nothing');
    await assertSameHistory([source, p], [target, resumed], [999, 1000, 1001, head], [new Date(SEED_EPOCH_MS + 250_000)]);
  });

  it('exports only up to the head it read at the start while writers go on', { timeout: 60_000 }, async () => {
    const source = await store(redis!.url);
    const p = project();
    const head = await seedHistory(source, p, 200);
    let writing = true;
    const writer = (async () => {
      while (writing) await seedHistory(source, p, 5, SEED_EPOCH_MS + 10_000_000);
    })();
    const archive = await exportToBuffer(source, p);
    writing = false;
    await writer;
    assert.ok((await source.head(p)) > head);
    const t = project();
    const target = await store(`file://${dir!.dir}/live`);
    const imported = await importFromBuffer(target, t, archive);
    assert.ok(imported.head >= head);
    const original = await source.read(p, { from: 1, to: imported.head, limit: imported.head });
    assert.deepEqual(await target.read(t, { limit: imported.head }), original);
  });

  it('exports and imports blobs far larger in total than the memory it uses', { timeout: 180_000 }, async (t) => {
    const source = await store(`file://${dir!.dir}/big-source`);
    const target = await store(`file://${dir!.dir}/big-target`);
    const p = project();
    const blobs = 96;
    const blobBytes = 4 * 1024 * 1024;
    for (let i = 0; i < blobs; i++) {
      const content = randomBytes(blobBytes);
      const hash = await source.putBlob(p, content);
      await source.append(p, [{ type: 'FileWritten', actor: 'seed', data: { path: `big/${i}.bin`, hash, size: blobBytes, mode: 0o644, mtimeMs: i } }]);
    }
    const file = `${dir!.dir}/big.archive`;
    const peak = async (work: () => Promise<unknown>): Promise<number> => {
      const before = process.memoryUsage.rss();
      let high = before;
      const sampler = setInterval(() => (high = Math.max(high, process.memoryUsage.rss())), 2);
      try {
        await work();
      } finally {
        clearInterval(sampler);
      }
      return Math.max(high, process.memoryUsage.rss()) - before;
    };
    const total = blobs * blobBytes;
    const exportGrowth = await peak(async () => {
      const out = createWriteStream(file);
      await exportProject(source, p, out);
      out.end();
      await finished(out);
    });
    assert.ok((await stat(file)).size > total);
    const imported = project();
    const importGrowth = await peak(() => importProject(target, imported, createReadStream(file)));
    assert.equal(await target.head(imported), blobs);
    // Each pass holds one 4 MiB blob at a time (a few, until the collector frees them), never all 384 MiB (holding them all measured 393 MiB).
    t.diagnostic(`RSS growth: export ${(exportGrowth / 2 ** 20).toFixed(0)} MiB, import ${(importGrowth / 2 ** 20).toFixed(0)} MiB`);
    for (const [what, growth] of [['export', exportGrowth], ['import', importGrowth]] as const) {
      assert.ok(growth < total / 3, `${what} grew RSS by ${(growth / 2 ** 20).toFixed(0)} MiB for ${(total / 2 ** 20).toFixed(0)} MiB of blobs`);
    }
  });
});
