/**
 * The native addon and the keeper, on real parts: a real /dev/fuse connection mounted with mount(2),
 * the built keeper binary on a real unix socket, real child processes. Root only (mount(2)).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from '@lighthouse-bridge/test/eventually';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { KeeperClient } from '../custody/keeper.js';
import { isNativeError, keeperPath, MNT_DETACH, native, type Pump } from './native.js';

const run = promisify(execFile);
const TIMEOUT_MS = 2_000;
/** Linux errno values and FUSE opcodes the test's minimal server knows. */
const ERRNO = { ENODEV: 19, ENOSYS: 38 } as const;
const OPCODE = { GETATTR: 3, INIT: 26 } as const;
const BUFFER_SIZE = 135_168;

function request(op: string, name: string, payload = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from(op), Buffer.from(`${name}\0`), payload]);
}

/** The reply's op letter and the rest. */
function call(socket: string, message: Buffer, fds: number[] = []): { op: string; body: Buffer; fds: number[] } {
  const { reply, fds: got } = native.keeperCall(socket, message, fds, TIMEOUT_MS);
  return { op: reply.subarray(0, 1).toString(), body: reply.subarray(1), fds: got };
}

function names(socket: string): string[] {
  const { op, body } = call(socket, request('L', ''));
  assert.equal(op, 'Y');
  return body.toString().split('\0').filter((n) => n !== '');
}

interface Keeper {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function startKeeper(socket: string, extra: string[] = []): Promise<Keeper> {
  const child = spawn(keeperPath, ['--socket', socket, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  await eventually('the keeper serving', () => stderr.includes('keeper: serving'));
  return { child, stderr: () => stderr, exited };
}

/** A minimal FUSE server: INIT answered (protocol 7.38), everything else ENOSYS. */
function answer(fd: number, req: Buffer, seen: number[]): void {
  const opcode = req.readUInt32LE(4);
  const unique = req.readBigUInt64LE(8);
  seen.push(opcode);
  const body = opcode === OPCODE.INIT ? initReply(req) : Buffer.alloc(0);
  const out = Buffer.alloc(16 + body.length);
  out.writeUInt32LE(out.length, 0);
  out.writeInt32LE(opcode === OPCODE.INIT ? 0 : -ERRNO.ENOSYS, 4);
  out.writeBigUInt64LE(unique, 8);
  body.copy(out, 16);
  writeSync(fd, out);
}

function initReply(req: Buffer): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(7, 0);
  b.writeUInt32LE(38, 4);
  b.writeUInt32LE(req.readUInt32LE(40 + 8), 8); // max_readahead as the kernel offered
  b.writeUInt16LE(12, 16); // max_background
  b.writeUInt16LE(9, 18); // congestion_threshold
  b.writeUInt32LE(131_072, 20); // max_write
  b.writeUInt32LE(1, 24); // time_gran
  return b;
}

function mountFuse(dir: string): number {
  const fd = openSync('/dev/fuse', 'r+');
  native.mount('lhbtest', dir, 'fuse.lhbtest', 0, `fd=${fd},rootmode=40000,user_id=0,group_id=0`);
  return fd;
}

describe('native addon and keeper', () => {
  let dir: string;
  let remove: () => Promise<void>;
  before(async () => ({ dir, remove } = await tempDir('lhb-native-')));
  after(async () => remove());

  /** A FUSE mount at mnt-NAME whose descriptor a keeper of its own holds as mnt-NAME; `close` ends both. */
  async function heldMount(name: string): Promise<{ socket: string; keeper: Keeper; mnt: string; fd: number; close(): Promise<void> }> {
    const socket = join(dir, `k-${name}`, 'keeper.sock');
    const keeper = await startKeeper(socket);
    const mnt = join(dir, `mnt-${name}`);
    await mkdir(mnt);
    const fd = mountFuse(mnt);
    const close = async (): Promise<void> => {
      closeSync(fd);
      keeper.child.kill('SIGTERM');
      await keeper.exited;
    };
    try {
      assert.equal(call(socket, request('P', `mnt-${name}`), [fd]).op, 'K');
    } catch (error) {
      native.umount(mnt, MNT_DETACH);
      await close();
      throw error;
    }
    return { socket, keeper, mnt, fd, close };
  }

  it('keeper: put, get, list, drop and bad messages', async () => {
    const socket = join(dir, 'k1', 'keeper.sock');
    const keeper = await startKeeper(socket);
    try {
      const file = join(dir, 'held');
      writeFileSync(file, 'hello');
      const fd = openSync(file, 'r');
      const payload = Buffer.from([0, 1, 2, 255, 0]);
      assert.equal(call(socket, request('P', 'conn-a', payload), [fd]).op, 'K');
      closeSync(fd);
      const got = call(socket, request('G', 'conn-a'));
      assert.equal(got.op, 'Y');
      assert.deepEqual(got.body, payload);
      assert.equal(got.fds.length, 1);
      assert.equal(fstatSync(got.fds[0]!).ino, statSync(file).ino);
      assert.equal(readFileSync(got.fds[0]!, 'utf8'), 'hello');
      closeSync(got.fds[0]!);
      assert.deepEqual(names(socket), ['conn-a']);

      const bad: [Buffer, boolean, RegExp][] = [
        [Buffer.from('X'), false, /NUL-terminated/],
        [request('Q', 'x'), false, /unknown op/],
        [request('P', 'no-fd'), false, /exactly one descriptor/],
        [request('G', 'with-fd'), true, /only put carries a descriptor/],
        [request('G', 'x'.repeat(4097)), false, /longer than 4096/],
        [request('P', 'big', Buffer.alloc(64 * 1024 + 1)), true, /64 KiB/],
      ];
      for (const [message, withFd, reason] of bad) {
        const fds = withFd ? [openSync(file, 'r')] : [];
        const r = call(socket, message, fds);
        for (const f of fds) closeSync(f);
        assert.equal(r.op, 'E', `reply to ${message.subarray(0, 8).toString()}`);
        assert.match(r.body.toString(), reason);
      }
      assert.deepEqual(names(socket), ['conn-a'], 'the keeper is alive and still holds its descriptor');

      assert.equal(call(socket, request('D', 'conn-a')).op, 'K');
      assert.equal(call(socket, request('G', 'conn-a')).op, 'N');
      assert.deepEqual(names(socket), []);
    } finally {
      keeper.child.kill('SIGTERM');
      assert.equal(await keeper.exited, 0);
    }
  });

  it('a second keeper on a live socket exits at once; a stale socket is replaced', async () => {
    const socket = join(dir, 'k2', 'keeper.sock');
    const first = await startKeeper(socket);
    const second = spawn(keeperPath, ['--socket', socket], { stdio: 'ignore' });
    assert.equal(await new Promise((resolve) => second.on('exit', resolve)), 0);
    assert.deepEqual(names(socket), [], 'the first keeper still serves');
    first.child.kill('SIGKILL');
    await first.exited;
    const third = await startKeeper(socket);
    assert.deepEqual(names(socket), []);
    third.child.kill('SIGTERM');
    await third.exited;
  });

  it('--idle-exit: the keeper lives while it holds something and exits once idle that long', async () => {
    const socket = join(dir, 'k5', 'keeper.sock');
    const keeper = await startKeeper(socket, ['--idle-exit', '0.3']);
    const fd = openSync(join(dir, 'k5'), 'r');
    assert.equal(call(socket, request('P', 'held'), [fd]).op, 'K');
    closeSync(fd);
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.deepEqual(names(socket), ['held'], 'alive while holding');
    const dropped = Date.now();
    assert.equal(call(socket, request('D', 'held')).op, 'K');
    assert.equal(await keeper.exited, 0);
    assert.ok(Date.now() - dropped >= 250, 'not before the idle time');
    assert.throws(() => names(socket), (error) => isNativeError(error) && error.code === 'ENOENT');
  });

  it('--idle-exit: every request starts the idle time again, so a client that found the keeper can still put', async () => {
    const socket = join(dir, 'k6', 'keeper.sock');
    const keeper = await startKeeper(socket, ['--idle-exit', '0.8']);
    const started = Date.now();
    while (Date.now() - started < 2000) {
      assert.deepEqual(names(socket), [], 'alive while asked, though it holds nothing');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const asked = Date.now();
    names(socket);
    assert.equal(await keeper.exited, 0);
    assert.ok(Date.now() - asked >= 750, 'not before the idle time after the last request');
  });

  it('keeperCall without a keeper fails with ENOENT or ECONNREFUSED', () => {
    assert.throws(
      () => native.keeperCall(join(dir, 'nobody.sock'), request('L', ''), [], TIMEOUT_MS),
      (error) => isNativeError(error) && ['ENOENT', 'ECONNREFUSED'].includes(error.code) && /keeper/.test(error.message),
    );
  });

  it('integer arguments refuse fractions, NaN, infinities and values out of range with a TypeError', () => {
    // int64 conversion would have truncated 1.5 to 1 (MNT_FORCE for umount2) and made NaN 0.
    for (const bad of [1.5, Number.NaN, Number.POSITIVE_INFINITY, -1, 2 ** 40, '2', undefined]) {
      assert.throws(() => native.umount('/nonexistent-lhb-target', bad as number), { name: 'TypeError', message: 'flags must be a non-negative integer' }, String(bad));
    }
    assert.throws(() => native.umount('/nonexistent-lhb-target', 0), (e: unknown) => isNativeError(e) && (e.code === 'ENOENT' || e.code === 'EINVAL'));
  });

  it('mount and umount errors carry the errno name', () => {
    assert.throws(
      () => native.mount('none', join(dir, 'missing'), 'tmpfs', 0, ''),
      (error) => isNativeError(error) && error.code === 'ENOENT' && error.message.includes('missing'),
    );
    assert.throws(() => native.umount(dir, 0), (error) => isNativeError(error) && error.code === 'EINVAL');
    assert.throws(() => native.startPump(0, 100, () => {}, () => {}), TypeError);
  });

  it('requests flow through the pump; after umount it ends with ENODEV and the keeper drops the descriptor', async () => {
    const { socket, keeper, mnt, fd, close } = await heldMount('a');
    try {
      const seen: number[] = [];
      const ends: number[] = [];
      native.startPump(fd, BUFFER_SIZE, (req) => answer(fd, req, seen), (errno) => ends.push(errno));
      const stat = await run('stat', [mnt]).then(
        () => 'ok',
        (error: { stderr: string }) => error.stderr,
      );
      assert.match(stat, /Function not implemented/, 'our ENOSYS answer reached stat');
      assert.equal(seen[0], OPCODE.INIT);
      assert.ok(seen.includes(OPCODE.GETATTR), `GETATTR among ${seen.join(',')}`);

      native.umount(mnt, MNT_DETACH);
      await eventually('the pump ending', () => ends.length > 0, TIMEOUT_MS);
      assert.deepEqual(ends, [ERRNO.ENODEV]);
      await eventually('the keeper dropping the ended connection', () => names(socket).length === 0, TIMEOUT_MS);
      // Its log line may still be in the pipe when the listing comes back empty.
      await eventually('the keeper saying why', () => /connection of mnt-a ended/.test(keeper.stderr()), TIMEOUT_MS);
    } finally {
      await close();
    }
  });

  it('the keeper sleeps while the connection it holds serves requests (the kernel wakes every poller of /dev/fuse)', async () => {
    const { keeper, mnt, fd, close } = await heldMount('quiet');
    const switches = () => Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${keeper.child.pid}/status`, 'utf8'))![1]);
    let pump: Pump | undefined;
    try {
      const seen: number[] = [];
      pump = native.startPump(fd, BUFFER_SIZE, (req) => answer(fd, req, seen), () => {});
      await run('stat', [mnt]).catch(() => undefined);
      const before = switches();
      const requestsBefore = seen.length;
      await run('python3', ['-c', `import os\nfor i in range(2000): os.path.exists('${mnt}/x%d' % i)`]);
      const requests = seen.length - requestsBefore;
      assert.ok(requests >= 2000, `${requests} requests reached the server`);
      const woke = switches() - before;
      assert.ok(woke < 100, `the keeper woke ${woke} times for ${requests} requests`);
    } finally {
      pump?.stop();
      native.umount(mnt, MNT_DETACH);
      await close();
    }
  });

  it('fusermountMount hands back a served /dev/fuse descriptor; its failures carry the exit status', async () => {
    const mnt = join(dir, 'mnt-c');
    await mkdir(mnt);
    const fd = native.fusermountMount(mnt, 'fsname=lhbtest,subtype=lhbtest');
    try {
      const seen: number[] = [];
      const ends: number[] = [];
      native.startPump(fd, BUFFER_SIZE, (req) => answer(fd, req, seen), (errno) => ends.push(errno));
      const stat = await run('stat', [mnt]).then(() => 'ok', (error: { stderr: string }) => error.stderr);
      assert.match(stat, /Function not implemented/);
      assert.ok(seen.includes(OPCODE.GETATTR));
      native.umount(mnt, MNT_DETACH);
      await eventually('the pump ending', () => ends.length > 0, TIMEOUT_MS);
      assert.deepEqual(ends, [ERRNO.ENODEV]);
    } finally {
      closeSync(fd);
    }
    assert.throws(
      () => native.fusermountMount(join(dir, 'missing'), 'subtype=lhbtest'),
      (error) => isNativeError(error) && /fusermount3 .* failed with exit status 1/.test(error.message),
    );
  });

  it('stop() inside onRequest: the request in hand is the last one delivered, then onEnd(0) once', async () => {
    const mnt = join(dir, 'mnt-d');
    await mkdir(mnt);
    const fd = mountFuse(mnt);
    let stat: Promise<unknown> = Promise.resolve();
    try {
      const seen: number[] = [];
      const events: string[] = [];
      const pump = native.startPump(
        fd,
        BUFFER_SIZE,
        (req) => {
          answer(fd, req, seen);
          events.push(`request ${req.readUInt32LE(4)}`);
          if (req.readUInt32LE(4) === OPCODE.GETATTR) {
            pump.stop();
            pump.stop();
          }
        },
        (errno) => events.push(`end ${errno}`),
      );
      // stat's requests after the GETATTR reach nobody: closing the descriptor below ends them.
      stat = run('stat', [mnt]).catch(() => undefined);
      await eventually('the pump ending', () => events.some((e) => e.startsWith('end')), TIMEOUT_MS);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(events.slice(-2), [`request ${OPCODE.GETATTR}`, 'end 0'], events.join(', '));
      pump.stop();
      assert.equal(events.filter((e) => e.startsWith('end')).length, 1);
    } finally {
      native.umount(mnt, MNT_DETACH);
      closeSync(fd);
      await stat;
    }
  });

  it('stop() ends an idle pump at once, onEnd(0) once, nothing after; the process can then exit', async () => {
    const mnt = join(dir, 'mnt-b');
    await mkdir(mnt);
    const script = `
      import { openSync } from 'node:fs';
      const { native } = await import(${JSON.stringify(new URL('./native.js', import.meta.url).href)});
      const fd = openSync('/dev/fuse', 'r+');
      native.mount('lhbtest', ${JSON.stringify(mnt)}, 'fuse.lhbtest', 0, 'fd=' + fd + ',rootmode=40000,user_id=0,group_id=0');
      let requests = 0, stopped = false;
      const pump = native.startPump(fd, ${BUFFER_SIZE}, () => { if (stopped) console.log('request after stop'); requests++; }, (errno) => {
        console.log('end ' + errno + ' after ' + (Date.now() - stoppedAt) + ' ms');
        native.umount(${JSON.stringify(mnt)}, 2);
      });
      let stoppedAt = 0;
      process.on('SIGUSR2', () => { stoppedAt = Date.now(); stopped = true; pump.stop(); pump.stop(); console.log('stop returned after ' + (Date.now() - stoppedAt) + ' ms'); });
      console.log('ready');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await eventually('the child pumping', () => out.includes('ready'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(child.exitCode, null, 'a running pump keeps the process alive');
      child.kill('SIGUSR2');
      const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 3_000))]);
      assert.equal(code, 0, out);
      const lines = out.trim().split('\n');
      assert.equal(lines.filter((l) => l.startsWith('end ')).length, 1, out);
      assert.match(out, /^end 0 after \d+ ms$/m);
      assert.ok(Number(/end 0 after (\d+)/.exec(out)![1]) < 500, out);
      assert.ok(!out.includes('request after stop'), out);
    } finally {
      child.kill('SIGKILL');
      await run('umount', ['-l', mnt]).catch(() => undefined);
    }
  });

  it('supervisor: restarts a killed command at once; SIGTERM ends the command and the keeper', async () => {
    const socket = join(dir, 'k4', 'keeper.sock');
    const log = join(dir, 'started');
    const keeper = await startKeeper(socket, ['--', 'sh', '-c', `echo "started $LHB_KEEPER_SOCKET" >> ${log}; exec sleep 30`]);
    const pids = () => [...keeper.stderr().matchAll(/started sh \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    await eventually('the command started', () => readFileSync(log, 'utf8').includes('started'));
    const first = pids()[0]!;
    process.kill(first, 'SIGKILL');
    await eventually('a new command', () => readFileSync(log, 'utf8').trim().split('\n').length === 2, 1_000);
    assert.equal(readFileSync(log, 'utf8'), `started ${socket}\nstarted ${socket}\n`);
    const second = pids()[1]!;
    assert.notEqual(second, first);
    keeper.child.kill('SIGTERM');
    assert.equal(await keeper.exited, 128 + 15, keeper.stderr());
    assert.throws(() => process.kill(second, 0), /ESRCH/, 'the command is gone');
  });

  it('rolling upgrade: a second supervisor serves PATH.next, takes the descriptors over, retires the first and moves to PATH once it is gone; a third succeeds it in turn', async () => {
    const socket = join(dir, 'k5', 'keeper.sock');
    const log = join(dir, 'roles');
    const old = await startKeeper(socket, ['--', 'sh', '-c', `echo "old $LHB_KEEPER_SOCKET" >> ${log}; exec sleep 30`]);
    const fd = openSync(join(dir, 'held-over'), 'w+');
    call(socket, request('P', 'vol', Buffer.from('state')), [fd]);
    closeSync(fd);
    const successor = await startKeeper(socket, ['--', 'sh', '-c', `echo "new $LHB_KEEPER_SOCKET $LHB_KEEPER_PREDECESSOR" >> ${log}; exec sleep 30`]);
    await eventually('both commands', () => readFileSync(log, 'utf8').trim().split('\n').length === 2);
    assert.match(readFileSync(log, 'utf8'), new RegExp(`new ${socket}.next ${socket}\n`));

    // What the new plugin does: duplicates from the predecessor into its own keeper, then retire it.
    const predecessor = new KeeperClient(socket);
    const own = new KeeperClient(`${socket}.next`);
    const held = predecessor.get('vol')!;
    own.put('vol', held.fd, held.payload);
    closeSync(held.fd);
    predecessor.retire();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.match(old.stderr(), /retiring: passing SIGTERM/);
    assert.equal(readFileSync(log, 'utf8').match(/^old /gm)?.length, 1, 'a retired command is not restarted');
    assert.deepEqual(names(socket), ['vol'], 'the retired keeper still holds it until it exits');

    old.child.kill('SIGTERM');
    await old.exited;
    await eventually('the successor on the primary path', () => successor.stderr().includes(`now serving ${socket}`), 2_000);
    assert.deepEqual(own.list(), ['vol'], 'a client of PATH.next follows the move');
    assert.equal(own.socket, socket);
    assert.equal(own.get('vol')!.payload.toString(), 'state');
    // The next upgrade succeeds the promoted keeper in turn.
    const third = await startKeeper(socket, ['--', 'sh', '-c', 'exec sleep 30']);
    assert.match(third.stderr(), /as its successor/);
    third.child.kill('SIGTERM');
    await third.exited;
    successor.child.kill('SIGTERM');
    await successor.exited;
  });

  it('--orphan-timeout: a descriptor whose server exited and that nobody got in time is dropped; one got in time is kept', async () => {
    const socket = join(dir, 'k6', 'keeper.sock');
    const keeper = await startKeeper(socket, ['--orphan-timeout', '0.5']);
    // A server process: puts a descriptor and exits, as a crashed mount would.
    const addon = JSON.stringify(new URL('./native.js', import.meta.url).href);
    const serve = (name: string) =>
      run(process.execPath, [
        '--input-type=module',
        '-e',
        [
          `const { native } = await import(${addon});`,
          `const fd = (await import('node:fs')).openSync(${JSON.stringify(join(dir, 'orphan-file'))}, 'w+');`,
          `native.keeperCall(${JSON.stringify(socket)}, Buffer.from(${JSON.stringify(`P${name}\0`)}), [fd], 2000);`,
        ].join('\n'),
      ]);
    await mkdir(join(dir, 'k6'), { recursive: true });
    await serve('forgotten');
    await serve('taken');
    // A successor takes one over (this process, alive), before the timeout.
    const { op, fds } = call(socket, request('G', 'taken'));
    assert.equal(op, 'Y');
    for (const fd of fds) closeSync(fd);
    await eventually('the forgotten one dropped', () => !names(socket).includes('forgotten'), 3_000);
    assert.deepEqual(names(socket), ['taken'], `the one a live process got is kept: ${keeper.stderr()}`);
    await eventually('the keeper to say why', () => /nobody took forgotten over within 0.5 s/.test(keeper.stderr()));
    keeper.child.kill('SIGTERM');
    await keeper.exited;
  });
});
