import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { promisify } from 'node:util';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { KeeperClient, mountAt } from '@lighthouse-bridge/csi-driver';
import { custodyMount, firstLine, missingRecords, percentile, restartDrill, stopMount } from '@lighthouse-bridge/test/custodyDrill';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { join } from 'node:path';

const RESTARTS = 20;
const run = promisify(execFile);

describe('mount: a killed server is taken over by the same command (ADR 0083)', { timeout: 240_000 }, () => {
  let tmp: { dir: string; remove: () => Promise<void> };
  before(async () => {
    tmp = await tempDir('lhb-custody-');
  });
  after(() => tmp.remove());

  it(`keeps a program on a private bind of the mount running through ${RESTARTS} kill -9 and restarts, losing no acknowledged write`, async (t) => {
    const result = await restartDrill({ dir: tmp.dir, restarts: RESTARTS });
    const { reader } = result;
    t.diagnostic(`${reader.writes} writes; stall per restart p50 ${percentile(result.restarts.map((r) => r.stallMs), 50)} ms, max ${reader.maxGapMs} ms; takeover p50 ${percentile(result.restarts.map((r) => r.takeoverMs), 50)} ms`);
    assert.deepEqual(reader.errors, {}, `the program saw errors: ${result.readerErrors.join('; ')}`);
    assert.ok(result.allTookOver, 'every restart took the live mount over');
    assert.ok(reader.writes > RESTARTS * 10, `the program kept working (${reader.writes} writes)`);
    // Every write the program was told succeeded is in the file, in place.
    const lost = missingRecords(result.content, reader.writes);
    assert.deepEqual(lost.slice(0, 10), [], `${lost.length} acknowledged writes missing`);
    assert.equal(result.content.length, reader.writes * 8);
    assert.equal(await mountAt(join(tmp.dir, 'mnt')), undefined, 'unmounted at the end');
  });
});

describe('mount: what a takeover restores', { timeout: 120_000 }, () => {
  let tmp: { dir: string; remove: () => Promise<void> };
  before(async () => {
    tmp = await tempDir('lhb-custody-kinds-');
  });
  after(() => tmp.remove());

  it('a held reader, an unsaved writer, a validate descriptor, a directory descriptor and a working directory all carry on after kill -9', async () => {
    const { mnt, socket, start } = custodyMount(tmp.dir, 'default/kinds');
    let server = start();
    let user: ChildProcess | undefined;
    try {
      await firstLine(server, 'server');
      await mkdir(join(mnt, 'current', 'dir'));
      await writeFile(join(mnt, 'current', 'dir', 'a.txt'), 'alpha');
      user = spawn('python3', ['-c', HOLDER, mnt], { stdio: ['pipe', 'pipe', 'inherit'] });
      assert.equal(await firstLine(user, 'user'), 'ready');
      server.kill('SIGKILL');
      await once(server, 'exit');
      server = start();
      assert.match(await firstLine(server, 'server'), /took over the live mount/);
      user.stdin!.end('go\n');
      const seen = JSON.parse(await firstLine(user, 'user')) as { read: string; listing: string[]; held: string[]; decision: string };
      assert.deepEqual(seen.held.sort(), ['a.txt', 'new.txt'], 'a directory descriptor held since before lists its own directory');
      assert.equal(seen.read, 'alpha', 'the reader reads on');
      assert.deepEqual(seen.listing.sort(), ['a.txt', 'new.txt'], 'the working directory resolves');
      assert.match(seen.decision, /^(allow|deny|escalate)$/, 'the validate descriptor answers');
      assert.equal(await readFile(join(mnt, 'current', 'dir', 'new.txt'), 'utf8'), 'before+after', 'the unsaved bytes survived and the close recorded them');
    } finally {
      user?.kill('SIGKILL');
      await stopMount(server, socket);
    }
  });
});

/** Holds one descriptor of each kind in the mount, then (after "go" on stdin) uses them all and prints what it saw. */
const HOLDER = `
import json, os, sys
mnt = sys.argv[1]
r = os.open(mnt + "/current/dir/a.txt", os.O_RDONLY)
w = os.open(mnt + "/current/dir/new.txt", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(w, b"before")
v = os.open(mnt + "/.bridge/validate", os.O_RDWR)
d = os.open(mnt + "/current/dir", os.O_RDONLY | os.O_DIRECTORY)
os.chdir(mnt + "/current/dir")
print("ready", flush=True)
sys.stdin.readline()
# The successor's own directory handles must not be mistaken for the one held since before.
for _ in range(5):
    os.listdir(mnt + "/current")
held_listing = os.listdir(d)
read = os.pread(r, 100, 0).decode()
os.write(w, b"+after")
os.close(w)
os.write(v, json.dumps({"agent": "a1", "tool": "Bash", "input": {"command": "ls"}}).encode() + b"\\n")
decision = json.loads(os.read(v, 65536).decode().splitlines()[0])["decision"]
print(json.dumps({"read": read, "listing": os.listdir("."), "held": held_listing, "decision": decision}), flush=True)
`;

describe('mount: a takeover that cannot succeed', { timeout: 120_000 }, () => {
  let tmp: { dir: string; remove: () => Promise<void> };
  before(async () => {
    tmp = await tempDir('lhb-custody-fail-');
  });
  after(() => tmp.remove());

  it('ends the connection (ENOTCONN, never a hang), and the next run mounts afresh with what was recorded', async () => {
    const { mnt, socket, start } = custodyMount(tmp.dir, 'default/fail');
    let server = start();
    try {
      await firstLine(server, 'server');
      await writeFile(join(mnt, 'current', 'kept.txt'), 'recorded');
      server.kill('SIGKILL');
      await once(server, 'exit');
      // What the keeper stores beside the descriptor is damaged (a foreign writer, a newer format).
      const keeper = new KeeperClient(socket);
      const held = keeper.get(mnt)!;
      keeper.put(mnt, held.fd, Buffer.from('{"v":99}'));
      closeSync(held.fd);

      server = start();
      const [code] = (await once(server, 'exit')) as [number | null];
      assert.notEqual(code, 0, 'the takeover fails');
      const seen = await run('ls', [join(mnt, 'current')], { timeout: 5_000 }).then(
        () => 'answered',
        (error: { stderr?: string; killed?: boolean }) => (error.killed ? 'hung' : (error.stderr ?? '')),
      );
      assert.match(seen, /not connected/, 'its users see the connection end, at once');
      assert.deepEqual(keeper.list(), [], 'the keeper no longer holds it');

      server = start();
      assert.match(await firstLine(server, 'server'), /^mounted /);
      assert.equal(await readFile(join(mnt, 'current', 'kept.txt'), 'utf8'), 'recorded');
    } finally {
      await stopMount(server, socket);
    }
  });
});
