import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { NewEvent, RecordedEvent } from '../events/events.js';
import type { ProjectId } from '../events/projectId.js';
import { ConcurrencyError, type EventStore, type HashedBlob, type Subscription } from '../store/eventStore.js';
import { contentHash } from '../events/contentHash.js';

/**
 * What a backend's test hands the contract suite. `reopen` closes `store` and opens the same
 * backend again (a restart); `openSecond` opens another independent client on the same backend
 * (another process or node). `teardown` closes every store the fixture handed out and removes
 * whatever the backend created.
 */
export interface ContractFixture {
  store: EventStore;
  reopen(): Promise<EventStore>;
  openSecond(): Promise<EventStore>;
  teardown(): Promise<void>;
}

const RFC3339_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** Bounds every wait for a live event, so a broken subscription fails instead of hanging. */
const WAIT_MS = 5_000;

/**
 * The behaviour every `EventStore` backend must show. Each test works in projects of its own
 * (random names), so a backend may share one server between tests.
 */
export function runEventStoreContract(name: string, setup: () => Promise<ContractFixture>): void {
  describe(`EventStore contract: ${name}`, () => {
    let fx: ContractFixture | undefined;
    let project: ProjectId;

    const store = (): EventStore => {
      assert.ok(fx, 'fixture was not set up');
      return fx.store;
    };

    beforeEach(async () => {
      fx = await setup();
      project = uniqueProject();
    });
    afterEach(async () => {
      await fx?.teardown();
      fx = undefined;
    });

    it('starts empty: head 0, no events, no snapshot', async () => {
      assert.equal(await store().head(project), 0);
      assert.deepEqual(await store().read(project), []);
      assert.equal(await store().loadSnapshot(project), undefined);
      await store().ping();
      assert.ok(store().kind === 'embedded' || store().kind === 'redis');
    });

    it('appends with dense sequence numbers from 1 and reads back exactly what was written', async () => {
      const first = await store().append(project, [fileWritten(1)]);
      assert.deepEqual(first.map((e) => e.seq), [1]);
      const batch = [fileWritten(2), validationRequested('ünïcødé ✓ "quoted" \\ \n'), fileWritten(3)];
      const rest = await store().append(project, batch);
      assert.deepEqual(rest.map((e) => e.seq), [2, 3, 4]);
      assert.equal(await store().head(project), 4);

      const all = await store().read(project);
      assert.deepEqual(all, [...first, ...rest]);
      assert.deepEqual(all.map(withoutStoreFields), [fileWritten(1), ...batch]);
    });

    it('keeps each multi-event append contiguous when many clients append at once', async () => {
      const second = await fx!.openSecond();
      const appends = Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? store() : second).append(project, [1, 2, 3, 4, 5].map((k) => tagged(`a${i}`, k))),
      );
      const results = await Promise.all(appends);
      for (const recorded of results) {
        const seqs = recorded.map((e) => e.seq);
        assert.deepEqual(seqs, seqs.map((_, k) => seqs[0]! + k), 'one append got non-consecutive sequence numbers');
      }
      const all = await store().read(project);
      assert.deepEqual(all.map((e) => e.seq), range(1, 100));
      for (let at = 0; at < all.length; at += 5) {
        const tags = new Set(all.slice(at, at + 5).map((e) => (e.data as { sessionId: string }).sessionId));
        assert.equal(tags.size, 1, `events of two appends interleaved at seq ${at + 1}`);
      }
    });

    it('honours expectedVersion: appends on a match, rejects a mismatch and writes nothing', async () => {
      await store().append(project, [fileWritten(1), fileWritten(2)], { expectedVersion: 0 });
      await store().append(project, [fileWritten(3)], { expectedVersion: 2 });
      const before = await store().read(project);

      for (const wrong of [0, 1, 2, 4, 10]) {
        await assert.rejects(
          store().append(project, [fileWritten(99), fileWritten(100)], { expectedVersion: wrong }),
          (error: unknown) => {
            assert.ok(error instanceof ConcurrencyError, `expected ConcurrencyError, got ${String(error)}`);
            assert.equal(error.expected, wrong);
            assert.equal(error.actual, 3);
            return true;
          },
        );
      }
      assert.equal(await store().head(project), 3);
      assert.deepEqual(await store().read(project), before);
    });

    it('lets exactly one of several concurrent appenders with the same expectedVersion win', async () => {
      const second = await fx!.openSecond();
      await store().append(project, [fileWritten(1)]);
      const contenders = Array.from({ length: 8 }, (_, i) =>
        (i % 2 === 0 ? store() : second).append(project, [tagged(`c${i}`, 1), tagged(`c${i}`, 2)], { expectedVersion: 1 }),
      );
      const outcomes = await Promise.allSettled(contenders);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      assert.equal(won.length, 1, 'exactly one appender must win');
      for (const o of lost) assert.ok(o.reason instanceof ConcurrencyError, `loser failed with ${String(o.reason)}`);
      assert.equal(await store().head(project), 3);
      assert.equal((await second.read(project)).length, 3);
    });

    it('assigns RFC 3339 UTC times that never decrease along the sequence', async () => {
      const started = Date.now();
      const second = await fx!.openSecond();
      for (let round = 0; round < 5; round++) {
        await Promise.all([store().append(project, [fileWritten(round)]), second.append(project, [fileWritten(round), fileWritten(round)])]);
      }
      const all = await store().read(project);
      assert.equal(all.length, 15);
      let previous = '';
      for (const e of all) {
        assert.match(e.time, RFC3339_MS_UTC);
        assert.equal(new Date(e.time).toISOString(), e.time);
        assert.ok(e.time >= previous, `time went backwards at seq ${e.seq}: ${previous} then ${e.time}`);
        previous = e.time;
      }
      // The store's clock, not the writer's, but on one machine they agree within a minute.
      assert.ok(Math.abs(Date.parse(all[0]!.time) - started) < 60_000);
    });

    it('records a given time (an import), never earlier than the previous event, and refuses a non-time', async () => {
      const past = '2020-01-02T03:04:05.678Z';
      const [first] = await store().append(project, [fileWritten(1)], { time: past });
      const [earlier] = await store().append(project, [fileWritten(2)], { time: '2019-01-01T00:00:00.000Z' });
      const [clocked] = await store().append(project, [fileWritten(3)]);
      assert.equal(first?.time, past);
      assert.equal(earlier?.time, past, 'a given time below the previous event is raised to it');
      assert.ok(Date.parse(clocked!.time) > Date.parse('2026-01-01T00:00:00Z'));
      assert.deepEqual((await store().read(project)).map((e) => e.time), [past, past, clocked!.time]);
      await assert.rejects(store().append(project, [fileWritten(4)], { time: 'yesterday' }), RangeError);
      assert.equal(await store().head(project), 3);
    });

    it('reads ranges with from, to and limit', async () => {
      await store().append(project, range(1, 25).map(fileWritten));
      const seqs = async (options: { from?: number; to?: number; limit?: number }): Promise<number[]> =>
        (await store().read(project, options)).map((e) => e.seq);
      assert.deepEqual(await seqs({ from: 10 }), range(10, 25));
      assert.deepEqual(await seqs({ to: 5 }), range(1, 5));
      assert.deepEqual(await seqs({ from: 7, to: 9 }), [7, 8, 9]);
      assert.deepEqual(await seqs({ from: 3, limit: 4 }), [3, 4, 5, 6]);
      assert.deepEqual(await seqs({ from: 20, to: 40, limit: 3 }), [20, 21, 22]);
      assert.deepEqual(await seqs({ from: 25 }), [25]);
      assert.deepEqual(await seqs({ from: 26 }), []);
      assert.deepEqual(await seqs({ from: 9, to: 8 }), []);
      const one = await store().read(project, { from: 13, to: 13 });
      assert.deepEqual(one.map(withoutStoreFields), [fileWritten(13)]);
    });

    it('returns at most 1000 events when no limit is given', async () => {
      for (let start = 1; start <= 1100; start += 100) await store().append(project, range(start, start + 99).map(fileWritten));
      const page = await store().read(project);
      assert.deepEqual(page.map((e) => e.seq), range(1, 1000));
      assert.deepEqual((await store().read(project, { from: 1001 })).map((e) => e.seq), range(1001, 1100));
    });

    it('subscribes from 0: existing events, then live ones from this and another client, each once, in order', async () => {
      const second = await fx!.openSecond();
      await store().append(project, [fileWritten(1), fileWritten(2), fileWritten(3)]);
      const feed = collect(store(), project, 0);
      try {
        await feed.until(3);
        await store().append(project, [fileWritten(4), fileWritten(5)]);
        await feed.until(5);
        await second.append(project, [fileWritten(6)]);
        await second.append(project, [fileWritten(7), fileWritten(8)]);
        await feed.until(8);
        await settle();
        assert.deepEqual(feed.seqs(), range(1, 8));
        assert.deepEqual(feed.events, await store().read(project));
      } finally {
        await feed.close();
      }
    });

    it('subscribes from the middle and sees another client\'s appends while idle', async () => {
      const second = await fx!.openSecond();
      await store().append(project, range(1, 10).map(fileWritten));
      const feed = collect(second, project, 6);
      try {
        await feed.until(4);
        assert.deepEqual(feed.seqs(), [7, 8, 9, 10]);
        await settle();
        await store().append(project, [fileWritten(11)]);
        await feed.until(5);
        const concurrent = Array.from({ length: 10 }, (_, i) => (i % 2 ? store() : second).append(project, [fileWritten(20 + i)]));
        await Promise.all(concurrent);
        await feed.until(15);
        await settle();
        assert.deepEqual(feed.seqs(), range(7, 21));
      } finally {
        await feed.close();
      }
    });

    it('subscribes to an empty project and wakes on its first event', async () => {
      const second = await fx!.openSecond();
      const feed = collect(store(), project, 0);
      try {
        await settle();
        assert.deepEqual(feed.seqs(), []);
        await second.append(project, [fileWritten(1)]);
        await feed.until(1);
        assert.deepEqual(feed.seqs(), [1]);
      } finally {
        await feed.close();
      }
    });

    it('stops delivering once the subscription is closed', async () => {
      const second = await fx!.openSecond();
      const feed = collect(store(), project, 0);
      await store().append(project, [fileWritten(1)]);
      await feed.until(1);
      await feed.close();
      await store().append(project, [fileWritten(2)]);
      await second.append(project, [fileWritten(3)]);
      await settle();
      assert.deepEqual(feed.seqs(), [1]);
    });

    it('stores blobs by sha256: binary, empty, 5 MiB; idempotent; unknown hash is undefined', async () => {
      const binary = Buffer.from([0, 1, 2, 0, 0, 255, 0, 10, 13, 0]);
      const empty = new Uint8Array(0);
      const large = randomBytes(5 * 1024 * 1024);
      for (const content of [binary, empty, large]) {
        const hash = await store().putBlob(project, content);
        assert.equal(hash, contentHash(content));
        assert.equal(await store().putBlob(project, content), hash, 'putBlob must be idempotent');
        const back = await store().getBlob(project, hash);
        assert.ok(back, `blob ${hash} not found`);
        assert.ok(Buffer.from(content).equals(back), `blob ${hash} came back different`);
      }
      assert.equal(await store().getBlob(project, contentHash(Buffer.from('never stored'))), undefined);
      const second = await fx!.openSecond();
      assert.ok(Buffer.from(binary).equals((await second.getBlob(project, contentHash(binary)))!));
    });

    it('stores the blobs an append brings: each readable once the append resolves, from another client too, in both durabilities; a refused append records nothing', async () => {
      const small = Buffer.from('brought by the append');
      const empty = new Uint8Array(0);
      const large = randomBytes(300 * 1024);
      const smallVisible = Buffer.from('brought by a visible append');
      await store().append(project, [fileWritten(1)], { expectedVersion: 0, blobs: [small, empty].map(hashed) });
      await store().append(project, [fileWritten(2)], { expectedVersion: 1, blobs: [large, smallVisible].map(hashed), durability: 'visible' });
      const second = await fx!.openSecond();
      for (const content of [small, empty, large, smallVisible]) {
        const back = await second.getBlob(project, contentHash(content));
        assert.ok(back && Buffer.from(content).equals(back), `blob of ${content.byteLength} bytes brought by an append is not readable`);
      }
      // A refused append records nothing; its blob may stay (content by hash harms no one), the log does not move.
      await assert.rejects(store().append(project, [fileWritten(3)], { expectedVersion: 0, blobs: [hashed(Buffer.from('refused'))] }), ConcurrencyError);
      assert.equal(await store().head(project), 2);
    });

    it('keeps several snapshots and loads the greatest at or before a sequence', async () => {
      const data = (seq: number): Uint8Array => Buffer.concat([Buffer.from([0, seq, 0]), randomBytes(64)]);
      const saved = [10, 30, 20].map((seq) => ({ seq, time: new Date(1_700_000_000_000 + seq * 1000).toISOString(), data: data(seq) }));
      for (const s of saved) await store().saveSnapshot(project, s);
      const bySeq = (seq: number) => saved.find((s) => s.seq === seq)!;

      const expectSnapshot = async (atOrBefore: number | undefined, seq: number | undefined): Promise<void> => {
        const got = await store().loadSnapshot(project, atOrBefore);
        if (seq === undefined) return assert.equal(got, undefined, `no snapshot expected at or before ${atOrBefore}`);
        assert.ok(got, `snapshot ${seq} expected at or before ${atOrBefore}`);
        assert.equal(got.seq, seq);
        assert.equal(got.time, bySeq(seq).time);
        assert.ok(Buffer.from(bySeq(seq).data).equals(Buffer.from(got.data)));
      };
      await expectSnapshot(undefined, 30);
      await expectSnapshot(30, 30);
      await expectSnapshot(1000, 30);
      await expectSnapshot(29, 20);
      await expectSnapshot(20, 20);
      await expectSnapshot(19, 10);
      await expectSnapshot(10, 10);
      await expectSnapshot(9, undefined);
    });

    it('keeps projects apart: events, blobs and snapshots', async () => {
      const other = uniqueProject();
      await store().append(project, [fileWritten(1), fileWritten(2)]);
      const hash = await store().putBlob(project, Buffer.from('only in the first project'));
      await store().saveSnapshot(project, { seq: 2, time: new Date().toISOString(), data: Buffer.from('snap') });

      assert.equal(await store().head(other), 0);
      assert.deepEqual(await store().read(other), []);
      assert.equal(await store().getBlob(other, hash), undefined);
      assert.equal(await store().loadSnapshot(other), undefined);
      // A project's own expectedVersion is not disturbed by another's head.
      const recorded = await store().append(other, [fileWritten(1)], { expectedVersion: 0 });
      assert.deepEqual(recorded.map((e) => e.seq), [1]);
      assert.equal(await store().head(project), 2);
    });

    it('keeps everything across reopen, and the sequence continues', async () => {
      const written = await store().append(project, range(1, 7).map(fileWritten));
      const blob = Buffer.concat([Buffer.from([0, 0, 0]), randomBytes(1000)]);
      const hash = await store().putBlob(project, blob);
      await store().saveSnapshot(project, { seq: 5, time: written[4]!.time, data: Buffer.from([5, 0, 5]) });

      const reopened = await fx!.reopen();
      assert.equal(await reopened.head(project), 7);
      assert.deepEqual(await reopened.read(project), written);
      assert.ok(blob.equals((await reopened.getBlob(project, hash))!));
      const snapshot = await reopened.loadSnapshot(project);
      assert.ok(snapshot);
      assert.equal(snapshot.seq, 5);
      assert.ok(Buffer.from([5, 0, 5]).equals(Buffer.from(snapshot.data)));

      const next = await reopened.append(project, [fileWritten(8)], { expectedVersion: 7 });
      assert.deepEqual(next.map((e) => e.seq), [8]);
      assert.ok(next[0]!.time >= written[6]!.time, 'time went backwards across reopen');
      const feed = collect(reopened, project, 6);
      try {
        await feed.until(2);
        assert.deepEqual(feed.seqs(), [7, 8]);
      } finally {
        await feed.close();
      }
    });
  });
}

function uniqueProject(): ProjectId {
  return { namespace: 'contract', name: `p-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}` };
}

function fileWritten(i: number): NewEvent {
  return {
    type: 'FileWritten',
    actor: 'contract-test',
    data: { path: `dir/file-${i}.txt`, hash: contentHash(Buffer.from(String(i))), size: i, mode: 0o644, mtimeMs: 1_700_000_000_000 + i },
  };
}

function tagged(tag: string, k: number): NewEvent {
  return { type: 'AgentSessionStarted', actor: `agent-${k}`, data: { sessionId: tag, agent: 'contract' } };
}

function validationRequested(text: string): NewEvent {
  return {
    type: 'ValidationRequested',
    actor: 'agent-7',
    data: { requestId: 'r1', agent: 'agent-7', tool: 'bash', input: { command: text, args: [1, null, true, { nested: [] }] }, deadlineMs: 1_700_000_000_000 },
  };
}

function withoutStoreFields(e: RecordedEvent): NewEvent {
  const { seq: _seq, time: _time, ...rest } = e;
  return rest as NewEvent;
}

/** What a writer hands an append: the content and the hash its event names. */
function hashed(content: Uint8Array): HashedBlob {
  return { hash: contentHash(content), content };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** Long enough for a duplicate or a stray late delivery to show up. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 150));
}

interface Feed {
  events: RecordedEvent[];
  seqs(): number[];
  until(count: number): Promise<void>;
  close(): Promise<void>;
}

function collect(store: EventStore, project: ProjectId, afterSeq: number): Feed {
  const events: RecordedEvent[] = [];
  let failure: Error | undefined;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of waiters) w();
  };
  const subscription: Subscription = store.subscribe(
    project,
    afterSeq,
    (batch) => {
      events.push(...batch);
      wake();
    },
    (error) => {
      failure = error;
      wake();
    },
  );
  return {
    events,
    seqs: () => events.map((e) => e.seq),
    until: (count) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (failure) finish(failure);
          else if (events.length >= count) finish();
        };
        const timer = setTimeout(
          () => finish(new Error(`subscription delivered ${events.length} events, expected ${count} within ${WAIT_MS} ms`)),
          WAIT_MS,
        );
        const finish = (error?: Error): void => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve();
        };
        waiters.add(check);
        check();
      }),
    close: () => subscription.close(),
  };
}
