/**
 * The CLI door: hostile invocations of the BUILT command, as users run it. Each row asserts the
 * exact exit code, a fragment of the one stderr line that explains it, and that the store's files
 * are byte for byte what they were (nothing written, nothing left behind).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { after, before } from 'node:test';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { door, type Case } from './table.js';

/** The BUILT CLI, run as users run it. */
const MAIN = fileURLToPath(new URL('../../../cli/dist/main.js', import.meta.url));
const USAGE = 2;
const REFUSED = 1;
const UNREACHABLE = 3;
const RUN_MS = 20_000;

interface CliCase extends Case {
  /** `STORE` stands for `--store file://<the seeded store>`. */
  args: string[];
  input?: Buffer;
  code: number;
  stderr: string | RegExp;
}

interface Result {
  code: number | null;
  stderr: string;
}

let root: string;
let storeUrl: string;
let removeTmp: (() => Promise<void>) | undefined;

function cli(args: string[], input: Buffer = Buffer.alloc(0)): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: root, env: { ...process.env, LHB_STORE: '', LHB_ACTOR: '' }, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lighthouse-bridge ${args.join(' ')} did not finish within ${RUN_MS} ms`));
    }, RUN_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
    // A command that refuses before reading stdin closes the pipe: that is not a failure here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** Every file under `dir` with a hash of its bytes: the store as a user could lose it. */
async function fingerprint(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true, recursive: true })).sort((a, b) => join(a.parentPath, a.name).localeCompare(join(b.parentPath, b.name)))) {
    const path = join(entry.parentPath, entry.name);
    out.push(entry.isFile() ? `${path} ${createHash('sha256').update(await readFile(path)).digest('hex')}` : path);
  }
  return out;
}

before(async () => {
  const tmp = await tempDir('lhb-adv-cli-');
  removeTmp = tmp.remove;
  root = tmp.dir;
  storeUrl = `file://${join(root, 'store')}`;
  const seed = async (args: string[], input?: Buffer): Promise<void> => {
    const result = await cli([...args, '--store', storeUrl], input);
    assert.equal(result.code, 0, result.stderr);
  };
  await seed(['put', 'team/p', 'file.txt'], Buffer.from('seed'));
  await seed(['mkdir', 'team/p', 'dir']);
  await seed(['put', 'team/p', 'dir/inner.txt'], Buffer.from('inner'));
  await writeFile(join(root, 'plain-file'), 'not a store');
  await mkdir(join(root, 'busy-mnt'));
  await writeFile(join(root, 'busy-mnt', 'occupant'), 'x');
});

after(async () => {
  await removeTmp?.();
});

const S = 'STORE';
const table: CliCase[] = [
  { name: 'an unknown command', args: ['frobnicate'], code: USAGE, stderr: 'unknown command "frobnicate"' },
  { name: 'put without a path', args: ['put', 'team/p', S], code: USAGE, stderr: 'missing <path>' },
  { name: 'put with an extra argument', args: ['put', 'team/p', 'a', 'b', S], code: USAGE, stderr: 'unexpected argument "b"' },
  { name: 'an unknown flag', args: ['put', 'team/p', 'a', '--bogus', S], code: USAGE, stderr: "Unknown option '--bogus'" },
  { name: 'a flag missing its value', args: ['cat', 'team/p', 'file.txt', S, '--at'], code: USAGE, stderr: "Option '--at <value>' argument missing" },
  { name: 'a project id with capitals and underscores', args: ['put', 'NOT_VALID/x', 'a', S], code: USAGE, stderr: 'NOT_VALID' },
  { name: 'a project id with two slashes', args: ['put', 'a/b/c', 'a', S], code: USAGE, stderr: 'a/b/c' },
  { name: 'an empty project id', args: ['cat', '', 'file.txt', S], code: USAGE, stderr: 'project' },
  { name: 'put escaping the project with ..', args: ['put', 'team/p', '../../etc/passwd', S], code: REFUSED, stderr: 'EINVAL' },
  { name: 'put a 256-byte name', args: ['put', 'team/p', 'n'.repeat(256), S], code: REFUSED, stderr: 'ENAMETOOLONG' },
  { name: 'put a path past 4096 bytes', args: ['put', 'team/p', Array.from({ length: 500 }, () => 'deeplevel').join('/'), S], code: REFUSED, stderr: 'ENAMETOOLONG' },
  { name: 'put beneath a file', args: ['put', 'team/p', 'file.txt/child', S], code: REFUSED, stderr: 'ENOTDIR' },
  { name: 'put over a directory', args: ['put', 'team/p', 'dir', S], code: REFUSED, stderr: 'EISDIR' },
  { name: 'put --mode that is not octal', args: ['put', 'team/p', 'm.txt', '--mode', '999', S], code: USAGE, stderr: '--mode' },
  { name: 'put --mode with letters', args: ['put', 'team/p', 'm.txt', '--mode', 'rwx', S], code: USAGE, stderr: '--mode' },
  { name: 'put --from a missing file', args: ['put', 'team/p', 'f.txt', '--from', '/nonexistent/input', S], code: REFUSED, stderr: 'ENOENT' },
  { name: 'put --from a directory', args: ['put', 'team/p', 'f.txt', '--from', '/tmp', S], code: REFUSED, stderr: 'EISDIR' },
  { name: 'put 64 MiB + 1 from stdin', args: ['put', 'team/p', 'huge.bin', S], input: Buffer.alloc(64 * 1024 * 1024 + 1, 7), code: REFUSED, stderr: 'EFBIG' },
  { name: 'a store URL with an unknown scheme', args: ['cat', 'team/p', 'file.txt', '--store', 'ftp://127.0.0.1/x'], code: USAGE, stderr: 'unsupported store URL scheme "ftp://"' },
  { name: 'a store URL that is not a URL', args: ['cat', 'team/p', 'file.txt', '--store', 'not a url'], code: USAGE, stderr: 'invalid store URL "not a url"' },
  { name: 'an empty file:// store URL', args: ['cat', 'team/p', 'file.txt', '--store', 'file://'], code: USAGE, stderr: 'file:// needs a directory' },
  { name: 'a redis URL with port 0', args: ['cat', 'team/p', 'file.txt', '--store', 'redis://127.0.0.1:0'], code: USAGE, stderr: 'bad host:port "127.0.0.1:0"' },
  { name: 'a redis URL with database 99', args: ['cat', 'team/p', 'file.txt', '--store', 'redis://127.0.0.1:6379/99'], code: USAGE, stderr: 'database must be a number 0-15' },
  { name: 'two redis hosts without cluster', args: ['cat', 'team/p', 'file.txt', '--store', 'redis://127.0.0.1:1,127.0.0.1:2'], code: USAGE, stderr: 'use redis+cluster://' },
  { name: 'a redis store nobody listens on', args: ['cat', 'team/p', 'file.txt', '--store', 'redis://127.0.0.1:1'], code: UNREACHABLE, stderr: 'store unavailable' },
  { name: 'put to a store in /proc/self (spun at 100% CPU)', args: ['put', 'team/p', 'a', '--store', 'file:///proc/self'], code: USAGE, stderr: 'is on /proc, a kernel pseudo-filesystem' },
  { name: 'log of a store in /proc/self', args: ['log', 'team/p', '--store', 'file:///proc/self'], code: USAGE, stderr: 'is on /proc, a kernel pseudo-filesystem' },
  { name: 'a store in /sys', args: ['put', 'team/p', 'a', '--store', 'file:///sys/kernel/lhb'], code: USAGE, stderr: 'is on /sys, a kernel pseudo-filesystem' },
  { name: 'a store in /dev', args: ['put', 'team/p', 'a', '--store', 'file:///dev/lhb-store'], code: USAGE, stderr: 'is on /dev, a kernel pseudo-filesystem' },
  { name: 'a store that is /dev/null', args: ['log', 'team/p', '--store', 'file:///dev/null'], code: USAGE, stderr: 'store directory /dev/null is not a directory' },
  { name: 'a store that is a regular file', args: ['log', 'team/p', '--store', 'file://./plain-file'], code: USAGE, stderr: 'plain-file is not a directory' },
  { name: 'a store beneath a regular file', args: ['put', 'team/p', 'a', '--store', 'file://./plain-file/store'], code: USAGE, stderr: 'plain-file is not a directory' },
  { name: '--at that is neither a number nor a time', args: ['cat', 'team/p', 'file.txt', '--at', 'yesterday', S], code: USAGE, stderr: '--at "yesterday" is neither' },
  { name: '--at February 30', args: ['cat', 'team/p', 'file.txt', '--at', '2026-02-30T00:00:00Z', S], code: USAGE, stderr: '--at "2026-02-30T00:00:00Z" is neither' },
  { name: '--at February 29 of a common year', args: ['cat', 'team/p', 'file.txt', '--at', '2025-02-29T00:00:00Z', S], code: USAGE, stderr: 'is neither' },
  { name: '--at 24:00', args: ['ls', 'team/p', '--at', '2026-01-01T24:00:00Z', S], code: USAGE, stderr: 'is neither' },
  { name: '--at a leap second', args: ['ls', 'team/p', '--at', '2016-12-31T23:59:60Z', S], code: USAGE, stderr: 'is neither' },
  { name: '--at an offset of +24:00', args: ['ls', 'team/p', '--at', '2026-01-01T00:00:00+24:00', S], code: USAGE, stderr: 'is neither' },
  { name: '--at a time without a zone', args: ['ls', 'team/p', '--at', '2026-01-01T00:00:00', S], code: USAGE, stderr: 'is neither' },
  { name: '--at in exponent notation', args: ['ls', 'team/p', '--at', '1e3', S], code: USAGE, stderr: 'is neither' },
  { name: '--at past the largest safe integer', args: ['ls', 'team/p', '--at', '99999999999999999999', S], code: USAGE, stderr: 'is neither' },
  { name: '--at past the head', args: ['cat', 'team/p', 'file.txt', '--at', '99999', S], code: REFUSED, stderr: 'there is no event 99999' },
  { name: 'log --from that is not a number', args: ['log', 'team/p', '--from', 'abc', S], code: USAGE, stderr: '--from expects a sequence number, got "abc"' },
  { name: 'cat a missing file', args: ['cat', 'team/p', 'missing.txt', S], code: REFUSED, stderr: 'ENOENT' },
  { name: 'cat of a project that does not exist', args: ['cat', 'team/nobody', 'file.txt', S], code: REFUSED, stderr: 'ENOENT' },
  { name: 'cat a directory', args: ['cat', 'team/p', 'dir', S], code: REFUSED, stderr: 'EISDIR' },
  { name: 'ls a missing directory', args: ['ls', 'team/p', 'nowhere', S], code: REFUSED, stderr: 'ENOENT' },
  { name: 'rm a missing file', args: ['rm', 'team/p', 'missing.txt', S], code: REFUSED, stderr: 'ENOENT' },
  { name: 'rm a non-empty directory', args: ['rm', 'team/p', 'dir', S], code: REFUSED, stderr: 'ENOTEMPTY' },
  { name: 'rm the project root', args: ['rm', 'team/p', '', S], code: REFUSED, stderr: 'EINVAL' },
  { name: 'mv a directory into itself', args: ['mv', 'team/p', 'dir', 'dir/inside', S], code: REFUSED, stderr: 'EINVAL' },
  { name: 'mv a missing source', args: ['mv', 'team/p', 'missing.txt', 'other.txt', S], code: REFUSED, stderr: 'ENOENT' },
  { name: 'mkdir over a file', args: ['mkdir', 'team/p', 'file.txt', S], code: REFUSED, stderr: 'EEXIST' },
  { name: 'mkdir beneath a file', args: ['mkdir', 'team/p', 'file.txt/sub', S], code: REFUSED, stderr: 'ENOTDIR' },
  { name: 'mount on a non-empty directory', args: ['mount', 'team/p', 'busy-mnt', S], code: USAGE, stderr: 'is not empty (1 entries)' },
  { name: 'mount with --write-buffer-mib 0', args: ['mount', 'team/p', 'mnt', '--write-buffer-mib', '0', S], code: USAGE, stderr: '--write-buffer-mib expects a whole number of MiB' },
  { name: 'mount with --metrics-port 99999', args: ['mount', 'team/p', 'mnt', '--metrics-port', '99999', S], code: USAGE, stderr: '--metrics-port expects a port number 0-65535' },
];

door('CLI', table, async (row) => {
  const storeDir = join(root, 'store');
  const before = await fingerprint(storeDir);
  const args = row.args.flatMap((arg) => (arg === S ? ['--store', storeUrl] : [arg]));
  const result = await cli(args, row.input);
  assert.equal(result.code, row.code, `exit code; stderr: ${result.stderr}`);
  if (typeof row.stderr === 'string') assert.ok(result.stderr.includes(row.stderr), `stderr has "${row.stderr}": ${result.stderr}`);
  else assert.match(result.stderr, row.stderr);
  assert.deepEqual(await fingerprint(storeDir), before, 'the store is byte for byte unchanged');
  assert.deepEqual((await readdir(root)).sort(), ['busy-mnt', 'plain-file', 'store'], 'nothing left beside the store (no default store, no mountpoint)');
});
