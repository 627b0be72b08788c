/**
 * Crash and corruption loops on the embedded store (issue 14): the built CLI's `put` and `mount`
 * killed with SIGKILL mid-write on fresh and existing projects, and the newest segment truncated or
 * with a byte flipped. Afterwards every acknowledged write (a put that printed its seq, an fsync
 * through the mount that returned) is there, no sequence number is held by two events, and damage
 * is either cut with a warning (a torn tail) or refused naming the repair (a damaged record).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, open, readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { openStore, stateAt, type ProjectId } from '@lighthouse-bridge/core';
import { lazyUnmount } from '@lighthouse-bridge/csi-driver';
import { tempDir } from '@lighthouse-bridge/test/tmp';

const CLI = fileURLToPath(new URL('../../../cli/dist/main.js', import.meta.url));
const WAIT_MS = 20_000;

const children = new Set<ChildProcess>();
const mountpoints = new Set<string>();
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  // Unmount before removing directories: rm must never walk into a live mount.
  for (const mnt of mountpoints) await lazyUnmount(mnt).catch(() => undefined);
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function scratch(): Promise<string> {
  const tmp = await tempDir('lhb-crash-');
  cleanups.push(tmp.remove);
  return tmp.dir;
}

interface Run {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function start(args: string[], input = ''): Run {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, LHB_STORE: '', LHB_ACTOR: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(input);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { child, done };
}

const cli = (args: string[], input = '') => start(args, input).done;

interface LogLine {
  seq: number;
  type: string;
  path?: string;
  data: Record<string, unknown>;
}

/** `log --json`, which must succeed: the whole log, checked to be dense from 1. */
async function logOf(store: string, project: string): Promise<LogLine[]> {
  const result = await cli(['log', project, '--json', '--store', store]);
  assert.equal(result.code, 0, `log ${project} failed: ${result.stderr}`);
  const lines = result.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogLine);
  assert.deepEqual(
    lines.map((l) => l.seq),
    lines.map((_, i) => i + 1),
    'the log is not dense from 1',
  );
  return lines;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Each acknowledged seq holds exactly the write that was acknowledged with it, so none was reused. */
function assertAcknowledged(log: LogLine[], acked: Array<{ seq: number; path: string; content: string }>): void {
  const seqs = new Set<number>();
  for (const ack of acked) {
    assert.ok(!seqs.has(ack.seq), `seq ${ack.seq} was acknowledged twice`);
    seqs.add(ack.seq);
    const event = log[ack.seq - 1];
    assert.equal(event?.type, 'FileWritten', `acknowledged seq ${ack.seq} (${ack.path}) is ${event?.type ?? 'missing'}`);
    assert.equal(event.path, ack.path);
    assert.equal(event.data['hash'], sha256(ack.content), `seq ${ack.seq} holds other content than was acknowledged`);
  }
}

async function newestSegment(storeDir: string, project: ProjectId): Promise<string> {
  const logDir = join(storeDir, project.namespace, project.name, 'log');
  return join(logDir, (await readdir(logDir)).filter((n) => n.endsWith('.seg')).sort().at(-1)!);
}

/** Where the last record of a segment file starts, walking the length fields. */
function lastRecordOffset(segment: Buffer): number {
  let last = 8;
  for (let at = 8; at + 8 <= segment.length; at += 8 + segment.readUInt32LE(at)) last = at;
  return last;
}

function mount(project: string, mnt: string, store: string): { run: Run; ready: Promise<void> } {
  // No keeper: a SIGKILL here must leave a dead mount, as a crash without custody does (ADR 0083).
  const run = start(['mount', project, mnt, '--store', store, '--no-custody']);
  mountpoints.add(mnt);
  const ready = new Promise<void>((resolve, reject) => {
    run.child.stdout!.on('data', () => resolve());
    void run.done.then((r) => reject(new Error(`mount exited with ${r.code} before it was ready: ${r.stderr}`)));
    setTimeout(() => reject(new Error('mount not ready in time')), WAIT_MS);
  });
  return { run, ready };
}

describe('crash and corruption loops (embedded store, built CLI)', { timeout: 180_000 }, () => {
  it('kill -9 of concurrent puts, fresh and existing projects: every printed seq holds its write, none reused', async (t) => {
    const dir = await scratch();
    const store = `file://${dir}`;
    const acked = new Map<string, Array<{ seq: number; path: string; content: string }>>();
    let killed = 0;
    for (let round = 0; round < 6; round++) {
      const project = round % 2 === 0 ? `default/fresh${round}` : 'default/existing';
      const puts = Array.from({ length: 4 }, (_, k) => {
        const path = `r${round}/f${k}`;
        const content = `round ${round} put ${k}\n`;
        return { path, content, run: start(['put', project, path, '--store', store], content) };
      });
      await sleep(150 + 60 * (round % 4));
      for (const put of puts.slice(0, 2)) put.run.child.kill('SIGKILL');
      for (const put of puts) {
        const result = await put.run.done;
        if (result.signal === 'SIGKILL') killed++;
        if (result.code === 0) {
          const list = acked.get(project) ?? [];
          list.push({ seq: Number(result.stdout.trim()), path: put.path, content: put.content });
          acked.set(project, list);
        } else if (result.signal !== 'SIGKILL') {
          // Refused while another put holds the writer lock: not acknowledged, and it says why.
          assert.equal(result.code, 3, result.stderr);
          assert.match(result.stderr, /is open for writing by pid \d+/);
        }
      }
    }
    assert.ok(killed > 0, 'no put was killed mid-way');
    for (const [project, list] of acked) assertAcknowledged(await logOf(store, project), list);
    t.diagnostic(`${killed} puts killed, ${[...acked.values()].flat().length} acknowledged and all present`);
  });

  it('kill -9 of a mount writing with and without fsync, with chmods between: every fsync and every close that returned is kept, so is every chmod before one, the log a prefix', async (t) => {
    const dir = await scratch();
    const store = `file://${join(dir, 'store')}`;
    let acknowledged = 0;
    let chmods = 0;
    for (let round = 0; round < 4; round++) {
      const project = round % 2 === 0 ? `default/mfresh${round}` : 'default/mexisting';
      const mnt = join(dir, `mnt${round}`);
      await mkdir(mnt);
      const mounted = mount(project, mnt, store);
      await mounted.ready;
      // Every other file is fsync'd; the rest are acknowledged by close alone, which hands the
      // event to the log file before it returns: a kill -9 of the mount cannot lose either (ADR 0081).
      // Every third file is then chmod'ed, which returns before its append (ADR 0098): it may be
      // lost, but not once a later close or fsync has returned, and never out of order.
      const acked: Array<{ path: string; content: string; fsynced: boolean }> = [];
      const chmodded: Array<{ path: string; before: number }> = [];
      const issued: string[] = [];
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          const path = `r${round}-${i}.txt`;
          const content = `mount round ${round} file ${i}\n`;
          const fsynced = i % 2 === 0;
          const file = await open(join(mnt, 'current', path), 'w').catch(() => undefined);
          if (!file) return; // the mount died under us
          issued.push(`w ${path}`);
          try {
            await file.write(content);
            if (fsynced) await file.sync();
            await file.close();
            acked.push({ path, content, fsynced });
            if (i % 3 === 1) {
              issued.push(`m ${path}`);
              await chmod(join(mnt, 'current', path), 0o600);
              chmodded.push({ path, before: acked.length });
            }
          } catch {
            await file.close().catch(() => undefined);
            return; // what neither fsync nor close returned from was never acknowledged
          }
        }
      })();
      await sleep(300 + 100 * round);
      mounted.run.child.kill('SIGKILL');
      writing = false;
      await writer;
      await mounted.run.done;
      await lazyUnmount(mnt);
      mountpoints.delete(mnt);
      assert.ok(acked.length > 0, `round ${round}: nothing was acknowledged before the kill`);
      acknowledged += acked.length;
      chmods += chmodded.filter((c) => c.before < acked.length).length;

      const reader = await openStore(store, { readOnly: true });
      try {
        const id: ProjectId = { namespace: 'default', name: project.slice('default/'.length) };
        const state = await stateAt(reader, id);
        for (const ack of acked) {
          const node = state.nodes.get(ack.path);
          assert.equal(node?.kind, 'file', `round ${round}: ${ack.fsynced ? "fsync'd" : 'closed'} ${ack.path} is missing`);
          assert.equal((await reader.getBlob(id, node.hash))?.toString(), ack.content, `round ${round}: ${ack.path} lost its content`);
        }
        // A chmod that returned before a close or fsync that returned is kept: they wait for it.
        for (const { path, before } of chmodded.filter((c) => c.before < acked.length)) {
          const node = state.nodes.get(path);
          assert.equal(node?.kind === 'file' && node.mode, 0o600, `round ${round}: the chmod of ${path} is lost though ${acked[before]!.path} was closed after it`);
        }
        // What the log holds of this round is its files and chmods in the order they were made, none skipped.
        const ours = (e: LogLine): boolean => (e.type === 'FileWritten' || e.type === 'AttributesChanged') && e.path?.startsWith(`r${round}-`) === true;
        const recorded = (await logOf(store, project))
          .filter(ours)
          .map((e) => `${e.type === 'FileWritten' ? 'w' : 'm'} ${e.path}`)
          .filter((op, k, all) => op !== all[k - 1]);
        assert.deepEqual(recorded, issued.slice(0, recorded.length), `round ${round}: the log is not a prefix of the writes and chmods`);
      } finally {
        await reader.close();
      }
    }
    assert.ok(acknowledged >= 4);
    assert.ok(chmods > 0, 'no chmod was followed by a close before the kills');
    t.diagnostic(`4 mounts killed, ${acknowledged} fsync'd or closed files acknowledged and all present, ${chmods} chmods followed by one kept`);
  });

  it("the issue's repro in a loop: fresh store, mount, echo to 3 files, SIGTERM, log", async () => {
    for (let round = 0; round < 5; round++) {
      const dir = await scratch();
      const store = `file://${join(dir, 'store')}`;
      const mnt = join(dir, 'M');
      await mkdir(mnt);
      const mounted = mount('px', mnt, store);
      await mounted.ready;
      for (const name of ['f1', 'f2', 'f3']) {
        const echo = spawn('sh', ['-c', `echo data > ${join(mnt, 'current', name)}`], { stdio: 'inherit' });
        assert.equal(await new Promise((resolve) => echo.on('close', resolve)), 0);
      }
      mounted.run.child.kill('SIGTERM');
      assert.equal((await mounted.run.done).code, 0);
      mountpoints.delete(mnt);
      const log = await logOf(store, 'px');
      // A shell's `>` closes a dup of the emptied file before writing, so a file may take two events.
      assert.deepEqual([...new Set(log.filter((e) => e.type === 'FileWritten').map((e) => e.path))], ['f1', 'f2', 'f3'], `round ${round}`);
      for (const name of ['f1', 'f2', 'f3']) {
        const cat = await cli(['cat', 'px', name, '--store', store]);
        assert.equal(cat.stdout, 'data\n', `round ${round}: ${name}`);
      }
      const put = await cli(['put', 'px', 'after', '--store', store], 'x');
      assert.equal(put.code, 0, put.stderr);
      assert.equal(Number(put.stdout), log.length + 1);
    }
  });

  /** Damage to the newest segment's last record, and what the CLI must then do. */
  const damages: Array<{ name: string; torn: boolean; damage: (path: string, bytes: Buffer, last: number) => Promise<void> }> = [
    { name: 'truncate -s -1', torn: true, damage: (p, b) => truncate(p, b.length - 1) },
    { name: 'truncate -s -10', torn: true, damage: (p, b) => truncate(p, b.length - 10) },
    { name: 'truncate to 5 bytes of the last record (header unreadable)', torn: true, damage: (p, _b, last) => truncate(p, last + 5) },
    { name: 'flip the last byte', torn: false, damage: (p, b) => flip(p, b, b.length - 1) },
    { name: 'flip a byte 20 bytes before the end', torn: false, damage: (p, b) => flip(p, b, b.length - 20) },
    { name: "flip a byte of the last record's checksum", torn: false, damage: (p, b, last) => flip(p, b, last + 5) },
  ];

  for (const { name, torn, damage } of damages) {
    it(`${name}: ${torn ? 'cut with a warning' : 'refused naming the repair'}, the lost seq never reused`, async () => {
      const dir = await scratch();
      const store = `file://${dir}`;
      const project: ProjectId = { namespace: 'default', name: 'dmg' };
      const acked: Array<{ seq: number; path: string; content: string }> = [];
      for (let i = 1; i <= 3; i++) {
        const result = await cli(['put', 'dmg', `f${i}`, '--store', store], `content ${i}\n`);
        assert.equal(result.code, 0, result.stderr);
        acked.push({ seq: Number(result.stdout), path: `f${i}`, content: `content ${i}\n` });
      }
      const segment = await newestSegment(dir, project);
      const bytes = await readFile(segment);
      const last = lastRecordOffset(bytes);
      await damage(segment, bytes, last);
      const damaged = await readFile(segment);

      if (torn) {
        // A reader does not cut: to it the short tail could be a write in flight.
        assert.deepEqual((await logOf(store, 'dmg')).map((e) => e.seq), [1, 2]);
        assert.ok((await readFile(segment)).equals(damaged), 'log modified the file');
        const put = await cli(['put', 'dmg', 'f4', '--store', store], 'content 4\n');
        assert.equal(put.code, 0, put.stderr);
        assert.equal(Number(put.stdout), 4, 'the cut seq 3 was handed out again');
        const warning = put.stderr.split('\n').find((l) => l.includes('"level":"warn"'));
        assert.ok(warning, `no warning for the cut: ${put.stderr}`);
        const fields = JSON.parse(warning) as Record<string, unknown>;
        assert.deepEqual([fields['file'], fields['offset'], fields['bytes']], [segment, last, damaged.length - last]);
        assert.match(String(fields['reason']), /^torn write/);
        acked.push({ seq: 4, path: 'f4', content: 'content 4\n' });
      } else {
        const refusal = `lighthouse-bridge log: store unavailable: ${segment}: checksum mismatch at offset ${last}`;
        const hint = `Run "lighthouse-bridge repair default/dmg --store file://${dir}" to cut it off`;
        const log = await cli(['log', 'dmg', '--store', store]);
        assert.equal(log.code, 3);
        assert.ok(log.stderr.startsWith(refusal) && log.stderr.includes(hint), log.stderr);
        const put = await cli(['put', 'dmg', 'f4', '--store', store], 'content 4\n');
        assert.equal(put.code, 3);
        assert.ok(put.stderr.includes(hint), put.stderr);
        assert.ok((await readFile(segment)).equals(damaged), 'the damaged log was modified');

        const repair = await cli(['repair', 'dmg', '--store', store]);
        assert.equal(repair.code, 0, repair.stderr);
        assert.match(repair.stdout, new RegExp(`^cut ${damaged.length - last} bytes at offset ${last} of ${segment} \\(checksum mismatch\\); seqs 3 recorded as lost; the cut bytes are in `));
        assert.equal((await cli(['repair', 'dmg', '--store', store])).stdout, 'nothing to repair\n');
        const again = await cli(['put', 'dmg', 'f4', '--store', store], 'content 4\n');
        assert.equal(again.code, 0, again.stderr);
        assert.equal(Number(again.stdout), 4, 'the lost seq 3 was handed out again');
        acked.push({ seq: 4, path: 'f4', content: 'content 4\n' });
      }
      const log = await logOf(store, 'dmg');
      assert.equal(log[2]?.type, 'EventLost');
      assertAcknowledged(log, acked.filter((a) => a.seq !== 3));
      assert.ok((await stat(segment)).size > 0);
    });
  }
});

async function flip(path: string, bytes: Buffer, at: number): Promise<void> {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x01;
  await writeFile(path, copy);
}
