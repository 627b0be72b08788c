import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { DomainError } from '../aggregate/commands.js';
import { encodeSnapshot } from '../aggregate/snapshotCodec.js';
import { initialState } from '../aggregate/initialState.js';
import type { RecordedEvent } from '../events/events.js';
import type { ProjectId } from '../events/projectId.js';
import { StoreUnavailableError, type EventStore } from '../store/eventStore.js';
import { openStore } from '../store/open.js';
import { replayInto } from '../projection/replay.js';
import { WorkspaceClosedError } from './errors.js';
import { ProjectWorkspace, type WorkspaceOptions } from './workspace.js';
import { eventually } from '@lighthouse-bridge/test/eventually';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
let projectCounter = 0;
const freshProject = (): ProjectId => ({ namespace: 'ws-test', name: `p${process.pid}-${++projectCounter}` });

interface Backend {
  name: string;
  start(): Promise<void>;
  /** A second, independent client of the same backend (another process, as far as the store knows). */
  open(): Promise<EventStore>;
  stop(): Promise<void>;
}

const backends: Backend[] = (() => {
  let dir: { dir: string; remove: () => Promise<void> } | undefined;
  let redis: RedisServer | undefined;
  return [
    {
      name: 'embedded',
      start: async () => {
        dir = await tempDir('lhb-ws-');
      },
      open: () => openStore(`file://${dir?.dir}`),
      stop: async () => dir?.remove(),
    },
    {
      name: 'redis',
      start: async () => {
        redis = await startRedis();
      },
      open: () => openStore(redis?.url ?? ''),
      stop: async () => redis?.stop(),
    },
  ];
})();

for (const backend of backends) {
  describe(`ProjectWorkspace on the ${backend.name} store`, () => {
    let store: EventStore;
    const workspaces: ProjectWorkspace[] = [];
    const open = async (options: Partial<WorkspaceOptions> & { project: ProjectId }): Promise<ProjectWorkspace> => {
      const ws = await ProjectWorkspace.open({ store, actor: 'tester', ...options });
      workspaces.push(ws);
      return ws;
    };

    /** Runs `body` with a workspace on a second client of the same store: another process, as far as the store knows. */
    const withOtherWriter = async (project: ProjectId, live: boolean, actor: string, body: (writer: ProjectWorkspace) => Promise<void>): Promise<void> => {
      const other = await backend.open();
      try {
        const writer = await ProjectWorkspace.open({ store: other, project, actor, live });
        await body(writer);
        await writer.close();
      } finally {
        await other.close();
      }
    };

    before(async () => {
      await backend.start();
      store = await backend.open();
    });
    after(async () => {
      for (const ws of workspaces) await ws.close();
      await store?.close();
      await backend.stop();
    });

    it('writes binary content and reads it back; the state is applied when the write resolves', async () => {
      const ws = await open({ project: freshProject() });
      const content = Buffer.from([0, 1, 2, 255, 0, 13, 10, 0xc3]);
      await ws.execute({ type: 'MakeDirectory', path: 'src' });
      const [event] = await ws.writeFile('src/bin.dat', content, { mode: 0o600 });
      assert.equal(event?.type, 'FileWritten');
      assert.equal(event?.actor, 'tester');
      assert.equal(ws.head, event?.seq);
      const node = ws.lookup('src/bin.dat');
      assert.equal(node?.kind, 'file');
      if (node?.kind !== 'file') return;
      assert.deepEqual({ hash: node.hash, size: node.size, mode: node.mode }, { hash: sha(content), size: 8, mode: 0o600 });
      assert.deepEqual(await ws.readBlob(node.hash), content);
      assert.equal(ws.lookup('src//./bin.dat'), node);
    });

    it('refuses with DomainError and appends nothing', async () => {
      const ws = await open({ project: freshProject() });
      await assert.rejects(ws.writeFile('missing/a.txt', Buffer.from('x')), (e: unknown) => e instanceof DomainError && e.code === 'ENOENT');
      await assert.rejects(ws.execute({ type: 'Delete', path: '../etc/passwd' }), (e: unknown) => e instanceof DomainError && e.code === 'EINVAL');
      assert.equal(await store.head(ws.project), 0);
    });

    it('checks EFBIG before storing the blob', async () => {
      const ws = await open({ project: freshProject(), limits: { maxFileBytes: 10 } });
      const big = Buffer.from('0123456789A');
      await assert.rejects(ws.writeFile('big', big), (e: unknown) => e instanceof DomainError && e.code === 'EFBIG');
      assert.equal(await store.getBlob(ws.project, sha(big)), undefined);
      assert.equal(await store.head(ws.project), 0);
    });

    it('serializes concurrent commands: 40 parallel writes all land, with dense seqs', async () => {
      const ws = await open({ project: freshProject() });
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => ws.writeFile(`f${i}`, Buffer.from(`content ${i}`))));
      const seqs = results.map((r) => r[0]?.seq).sort((a, b) => (a ?? 0) - (b ?? 0));
      assert.deepEqual(seqs, Array.from({ length: 40 }, (_, i) => i + 1));
      assert.equal(ws.state.fileCount, 40);
    });

    it('concurrent file writes share appends: each resolves with its own event, and every content is stored', async () => {
      const project = freshProject();
      let appends = 0;
      const counting = withAppend(store, (...args) => {
        appends++;
        return store.append(...args);
      });
      const ws = await open({ project, store: counting });
      await ws.execute({ type: 'MakeDirectory', path: 'd' });
      appends = 0;
      const writes = Array.from({ length: 40 }, (_, i) => ws.writeFile(`d/f${i}`, Buffer.from(`content ${i}`)));
      // Refused on its own (no such directory) without holding the others back.
      const refused = assert.rejects(ws.writeFile('missing/x', Buffer.from('x')), (e: unknown) => e instanceof DomainError && e.code === 'ENOENT');
      const results = await Promise.all(writes);
      await refused;
      assert.ok(appends <= 4, `${appends} appends for 40 writes`);
      results.forEach((events, i) => assert.deepEqual(events.map((e) => [e.type, 'path' in e.data && e.data.path]), [['FileWritten', `d/f${i}`]]));
      assert.deepEqual(results.map((r) => r[0]?.seq), Array.from({ length: 40 }, (_, i) => i + 2));
      const reader = await open({ project, live: false, blobCacheBytes: 0 });
      for (let i = 0; i < 40; i++) {
        const node = reader.lookup(`d/f${i}`);
        assert.equal(node?.kind === 'file' && String(await reader.readBlob(node.hash)), `content ${i}`);
      }
    });

    it('a shared append that loses the race is decided again on the newer state, and each write gets its own answer', async () => {
      const project = freshProject();
      const stale = await open({ project, live: false });
      await withOtherWriter(project, false, 'other', async (writer) => {
        await writer.writeFile('c', Buffer.from('theirs'));
        await writer.execute({ type: 'MakeDirectory', path: 'b' });
        // Both decided on a state without c and b: the append conflicts, and the retry sees b is now a directory.
        const [a, b] = await Promise.allSettled([stale.writeFile('a', Buffer.from('ours')), stale.writeFile('b', Buffer.from('ours'))]);
        assert.equal(a.status === 'fulfilled' && a.value.map((e) => e.seq).join(), '3');
        assert.ok(b.status === 'rejected' && b.reason instanceof DomainError && b.reason.code === 'EISDIR', `b: ${b.status}`);
        assert.deepEqual((await store.read(project)).map((e) => [e.seq, e.type, e.actor]), [
          [1, 'FileWritten', 'other'],
          [2, 'DirectoryCreated', 'other'],
          [3, 'FileWritten', 'tester'],
        ]);
        assert.equal(stale.lookup('c')?.kind, 'file');
      });
    });

    it('sync (fsync) waits for the writes queued before it, not for those that keep coming after it', async () => {
      const slow = withAppend(store, async (...args) => {
        await new Promise((r) => setTimeout(r, 5));
        return store.append(...args);
      });
      const ws = await open({ project: freshProject(), store: slow });
      const writes: Promise<unknown>[] = [];
      let n = 0;
      // Another writer that never pauses for 1.5 s: the queue is never empty meanwhile.
      const producer = setInterval(() => writes.push(ws.writeFile(`f${n++}`, Buffer.from('x'))), 1);
      setTimeout(() => clearInterval(producer), 1_500);
      try {
        await new Promise((r) => setTimeout(r, 30));
        writes.push(ws.writeFile('before', Buffer.from('queued before the sync')));
        const started = performance.now();
        await ws.sync();
        const took = performance.now() - started;
        assert.equal(ws.lookup('before')?.kind, 'file', 'a write queued before sync is applied when sync returns');
        assert.ok(took < 1_000, `sync took ${Math.round(took)} ms while another writer kept writing`);
      } finally {
        clearInterval(producer);
        await Promise.all(writes);
      }
    });

    it('a shared append the store refuses fails every write in it, records none, and the next write goes through', async () => {
      let refuse = true;
      const failing = withAppend(store, (...args) => {
        if (refuse && args[1].length > 1) {
          refuse = false;
          return Promise.reject(new StoreUnavailableError('refused for the test'));
        }
        return store.append(...args);
      });
      const ws = await open({ project: freshProject(), store: failing });
      const outcomes = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => ws.writeFile(`f${i}`, Buffer.from(`${i}`))));
      assert.deepEqual(outcomes.map((o) => o.status === 'rejected' && o.reason instanceof StoreUnavailableError), [true, true, true, true, true]);
      assert.equal(ws.state.fileCount, 0);
      assert.equal(await store.head(ws.project), 0);
      const [written] = await ws.writeFile('after', Buffer.from('fine'));
      assert.equal(written?.seq, 1);
    });

    it('attribute changes nobody waits for are shown at once, refused at once when they must be, and share the append of the rename after them', async () => {
      const project = freshProject();
      const appends: string[][] = [];
      const counting = withAppend(store, (...args) => {
        appends.push(args[1].map((e) => e.type));
        return store.append(...args);
      });
      const ws = await open({ project, store: counting });
      await ws.writeFile('tmp', Buffer.from('x'));
      appends.length = 0;
      assert.throws(() => ws.changeAttributesBehind('missing', { mode: 0o600 }), (e: unknown) => e instanceof DomainError && e.code === 'ENOENT');
      assert.throws(() => ws.changeAttributesBehind('tmp', { mode: -1 }), (e: unknown) => e instanceof DomainError && e.code === 'EINVAL');
      ws.changeAttributesBehind('tmp', { mode: 0o600 });
      ws.changeAttributesBehind('./tmp', { mode: 0o755 });
      ws.changeAttributesBehind('tmp', { mtimeMs: 1_000_000 });
      assert.deepEqual({ ...ws.attributesBehind('tmp'), ctimeMs: 0 }, { mode: 0o755, mtimeMs: 1_000_000, ctimeMs: 0 });
      const head = ws.lookup('tmp');
      assert.deepEqual(head?.kind === 'file' && [head.mode, head.mtimeMs === 1_000_000], [0o644, false], 'the head stays what the store has');
      await ws.execute({ type: 'Move', from: 'tmp', to: 'final' });
      assert.equal(ws.attributesBehind('tmp'), undefined);
      const node = ws.lookup('final');
      assert.deepEqual(node?.kind === 'file' && [node.mode, node.mtimeMs], [0o755, 1_000_000]);
      assert.deepEqual(appends, [['AttributesChanged', 'AttributesChanged', 'AttributesChanged', 'PathMoved']]);
      assert.deepEqual((await store.read(project)).map((e) => e.type), ['FileWritten', 'AttributesChanged', 'AttributesChanged', 'AttributesChanged', 'PathMoved']);
    });

    it('an attribute change refused or lost when its turn comes is reported and no longer shown', async () => {
      let refuse = false;
      const failing = withAppend(store, (...args) => (refuse ? Promise.reject(new StoreUnavailableError('refused for the test')) : store.append(...args)));
      const errors: Error[] = [];
      const ws = await open({ project: freshProject(), store: failing, onError: (e) => errors.push(e) });
      await ws.writeFile('gone', Buffer.from('x'));
      await ws.writeFile('kept', Buffer.from('x'));
      // Accepted on the head it sees; the delete queued before it has removed the file by its turn.
      const deleting = ws.execute({ type: 'Delete', path: 'gone' });
      ws.changeAttributesBehind('gone', { mode: 0o600 });
      await deleting;
      await ws.sync();
      assert.equal(ws.attributesBehind('gone'), undefined);
      assert.equal(errors.length, 1);
      assert.match(errors[0]!.message, /^gone: a change of attributes that had already returned was not recorded: .*does not exist/);
      refuse = true;
      ws.changeAttributesBehind('kept', { mode: 0o600 });
      assert.equal(ws.attributesBehind('kept')?.mode, 0o600);
      await ws.sync();
      assert.equal(ws.attributesBehind('kept'), undefined, 'stat shows what the store has again');
      const kept = ws.lookup('kept');
      assert.equal(kept?.kind === 'file' && kept.mode, 0o644);
      assert.match(errors[1]?.message ?? '', /^kept: .*refused for the test/);
    });

    it('close lets writes already queued finish, and refuses new ones', async () => {
      const project = freshProject();
      const ws = await open({ project });
      const writes = Array.from({ length: 10 }, (_, i) => ws.writeFile(`f${i}`, Buffer.from(`${i}`)));
      await ws.close();
      assert.equal((await Promise.all(writes)).length, 10);
      assert.equal(await store.head(project), 10);
      await assert.rejects(ws.writeFile('late', Buffer.from('x')), WorkspaceClosedError);
    });

    it('writes to one path are decided in turn, not together: the second keeps the mode the first gave', async () => {
      const ws = await open({ project: freshProject() });
      const [first, second] = await Promise.all([ws.writeFile('a', Buffer.from('1'), { mode: 0o600 }), ws.writeFile('a', Buffer.from('2'))]);
      assert.equal(first[0]?.seq, 1);
      assert.equal(second[0]?.seq, 2);
      const node = ws.lookup('a');
      assert.deepEqual(node?.kind === 'file' && [node.mode, String(await ws.readBlob(node.hash))], [0o600, '2']);
    });

    it('writes that fit the limits one by one but not together: those that fit are written, the rest refused ENOSPC', async () => {
      const ws = await open({ project: freshProject(), limits: { maxFiles: 5 } });
      const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => ws.writeFile(`f${i}`, Buffer.from(`${i}`))));
      assert.deepEqual(outcomes.map((o) => o.status), [...Array(5).fill('fulfilled'), ...Array(3).fill('rejected')]);
      for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as DomainError).code, 'ENOSPC');
      assert.equal(ws.state.fileCount, 5);
      assert.equal(await store.head(ws.project), 5);
    });

    it("follows other writers' events live, and notifies listeners after applying them", async () => {
      const project = freshProject();
      const reader = await open({ project });
      await withOtherWriter(project, true, 'other', async (writer) => {
        const seen: RecordedEvent[] = [];
        reader.onEvents((events) => {
          for (const e of events) {
            assert.equal(reader.head >= e.seq, true, 'listener runs after the state is applied');
            seen.push(e);
          }
        });
        await writer.writeFile('hello.txt', Buffer.from('hi'));
        await eventually('the reader to see the write', () => reader.lookup('hello.txt') !== undefined);
        assert.deepEqual(seen.map((e) => [e.type, e.actor]), [['FileWritten', 'other']]);
      });
    });

    it('on a version conflict catches up and decides again on the newer state', async () => {
      const project = freshProject();
      const stale = await open({ project, live: false });
      await withOtherWriter(project, false, 'other', async (writer) => {
        await writer.execute({ type: 'MakeDirectory', path: 'taken' });
        await writer.writeFile('a', Buffer.from('A'));
        // Decided on a state without 'taken': the retry sees it and refuses.
        await assert.rejects(stale.execute({ type: 'MakeDirectory', path: 'taken' }), (e: unknown) => e instanceof DomainError && e.code === 'EEXIST');
        assert.equal(stale.head, 2);
        const [moved] = await stale.execute({ type: 'Move', from: 'a', to: 'b' });
        assert.equal(moved?.seq, 3);
        assert.equal(stale.lookup('b')?.kind, 'file');
      });
    });

    it('catchUp applies what another writer recorded at once, without waiting for the tail', async () => {
      const project = freshProject();
      // Not following the tail: only catchUp can bring the other writer's file.
      const successor = await open({ project, live: false });
      await withOtherWriter(project, false, 'predecessor', async (predecessor) => {
        await predecessor.writeFile('last.txt', Buffer.from('written just before the handover'));
        assert.equal(successor.lookup('last.txt'), undefined);
        await successor.catchUp();
        assert.equal(successor.head, predecessor.head);
        assert.equal(successor.lookup('last.txt')?.kind, 'file');
      });
    });

    it('readBlob serves repeats from the L1 cache without touching the store', async () => {
      const project = freshProject();
      const seed = await open({ project });
      await seed.writeFile('x', Buffer.from('cached content'));
      let getBlobCalls = 0;
      const counting: EventStore = Object.create(store, {
        getBlob: {
          value: (p: ProjectId, h: string) => {
            getBlobCalls++;
            return store.getBlob(p, h);
          },
        },
      });
      const ws = await open({ project, store: counting, live: false });
      const node = ws.lookup('x');
      assert.equal(node?.kind, 'file');
      if (node?.kind !== 'file') return;
      const [a, b] = await Promise.all([ws.readBlob(node.hash), ws.readBlob(node.hash)]);
      assert.equal(getBlobCalls, 1, 'concurrent misses share one read');
      assert.equal(String(a), 'cached content');
      assert.equal(a, b);
      await ws.readBlob(node.hash);
      assert.equal(getBlobCalls, 1);
      assert.equal(ws.cacheStats.hits >= 1, true);
    });

    it('history: stateAt(seq) and seqAt(time) are read-only views; past the head is ENOENT', async () => {
      const ws = await open({ project: freshProject() });
      const [first] = await ws.writeFile('doc', Buffer.from('v1'));
      await new Promise((r) => setTimeout(r, 5));
      await ws.writeFile('doc', Buffer.from('v2'));
      await ws.execute({ type: 'Delete', path: 'doc' });
      const atFirst = await ws.stateAt(first?.seq ?? 0);
      const doc = atFirst.nodes.get('doc');
      assert.equal(doc?.kind === 'file' && String(await ws.readBlob(doc.hash)), 'v1');
      assert.equal(ws.lookup('doc'), undefined);
      assert.equal((await ws.stateAt(0)).nodes.size, 1);
      await assert.rejects(ws.stateAt(ws.head + 1), (e: unknown) => e instanceof DomainError && e.code === 'ENOENT');
      assert.equal(await ws.seqAt(new Date(first?.time ?? '')), first?.seq);
      assert.equal(await ws.seqAt(new Date(Date.parse(first?.time ?? '') - 1)), 0);
      assert.equal(await ws.seqAt(new Date(Date.now() + 60_000)), ws.head);
    });

    it('saves snapshots in the background and reopens from one to the same state as a full replay', async () => {
      const project = freshProject();
      const ws = await open({ project, snapshotEvery: 10 });
      await ws.execute({ type: 'MakeDirectory', path: 'd' });
      for (let i = 0; i < 24; i++) await ws.writeFile(`d/f${i % 7}`, Buffer.from(`rev ${i}`));
      await ws.execute({ type: 'Move', from: 'd', to: 'e' });
      await ws.close();
      const snapshot = await store.loadSnapshot(project);
      assert.equal(snapshot?.seq, 20);
      const reopened = await open({ project, live: false });
      const full = await replayInto(store, project, initialState());
      assert.equal(reopened.head, 26);
      assert.deepEqual(encodeSnapshot(reopened.state), encodeSnapshot(full));
    });
  });
}

describe('ProjectWorkspace across a Redis restart', () => {
  let redis: RedisServer | undefined;
  after(async () => redis?.stop());

  it('keeps following the tail: writes made after Redis comes back reach a live workspace', async () => {
    redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const project = freshProject();
    const readerStore = await openStore(redis.url);
    const errors: Error[] = [];
    const reader = await ProjectWorkspace.open({ store: readerStore, project, actor: 'reader', onError: (e) => errors.push(e) });
    try {
      await redis.restart();
      let writerStore: EventStore | undefined;
      const deadline = Date.now() + 15_000;
      // The writer is a fresh client, as another node would be; retried until Redis answers again.
      while (!writerStore) {
        try {
          writerStore = await openStore(redis.url);
          const writer = await ProjectWorkspace.open({ store: writerStore, project, actor: 'writer', live: false });
          await writer.writeFile('after-restart.txt', Buffer.from('still here'));
          await writer.close();
        } catch (error) {
          await writerStore?.close();
          writerStore = undefined;
          if (Date.now() > deadline) throw error;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      await eventually('the reader to see the write made after the restart', () => reader.lookup('after-restart.txt') !== undefined, 15_000);
      await writerStore.close();
    } finally {
      await reader.close();
      await readerStore.close();
    }
  });
});

/** `store` with its append replaced by `append` (which calls the real one): everything else is the real store. */
function withAppend(store: EventStore, append: EventStore['append']): EventStore {
  return Object.create(store, { append: { value: append } }) as EventStore;
}
