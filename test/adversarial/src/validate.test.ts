/**
 * The `.bridge/validate` door: hostile requests through a real FUSE mount served by this process,
 * with the validator a mount really uses (projectValidator: built-in policy, judged on a worker
 * thread). Each row asserts the exact answer lines, that nothing was recorded or left behind, and
 * that the mount still answers a stat at once. Served by this process: only async fs here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openStore, type EventStore } from '@lighthouse-bridge/core';
import { createLogger } from '@lighthouse-bridge/core/observability';
import { MAX_REQUEST_BYTES, type Validator } from '@lighthouse-bridge/core/speed-layer';
import { mountProject, projectValidator, type MountedProject } from '@lighthouse-bridge/csi-driver';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { door, type Case } from './table.js';

const PROJECT = { namespace: 'adversarial', name: 'validate' };
/** A stat on the mount must come back within this, whatever a validation is doing. */
const STAT_BUDGET_MS = 500;
/** Every answer, even to the largest request, comes within this (the slowest take ~0.5 s when loaded). */
const ANSWER_BUDGET_MS = 3000;

/** What one answer line must say; fields not listed must be absent (requestId, latencyMs, reason aside). */
interface Expected {
  decision?: 'allow' | 'deny';
  tier?: string;
  rule?: string;
  error?: string | RegExp;
  cached?: boolean;
}

interface Row extends Case {
  /** Written in order, one write(2) each. */
  writes: Array<string | Buffer>;
  /** The answer lines, in order; or the errno the last write fails with. */
  expect: Expected[] | { writeErrno: string };
}

const req = (command: string, extra: object = {}): string => JSON.stringify({ agent: 'agent-1', tool: 'Bash', input: { command }, ...extra });
const line = (s: string): string => `${s}\n`;
const invalid = (error: string | RegExp): Expected => ({ decision: 'deny', tier: 'invalid', cached: false, error });
const builtinDeny = (rule: string): Expected => ({ decision: 'deny', tier: 'policy', cached: false, rule: `builtin:${rule}` });
const readOnly: Expected = { decision: 'allow', tier: 'policy', cached: false, rule: 'builtin:read-only-commands' };
const EMPTY = { error: 'empty request: write one JSON object on one line, then read the answer' };
const NOT_OBJECT = 'request must be a JSON object with agent, tool and input';
const nested = (depth: number): string => `{"agent":"a","tool":"Bash","input":{"command":"ls","x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;

const rows: Row[] = [
  // Malformed text.
  { name: 'malformed JSON', writes: [line('{not json')], expect: [invalid(/^request is not valid JSON: /)] },
  { name: 'an empty line', writes: ['\n'], expect: [EMPTY] },
  { name: 'only white space', writes: [' \t \n\n  \n'], expect: [EMPTY] },
  { name: 'a truncated object', writes: [line('{"agent":"a","tool":"Bash","input":{"command":"ls"')], expect: [invalid(/^request is not valid JSON: /)] },
  { name: 'a byte-order mark before the object', writes: [line(`\ufeff${req('ls bom')}`)], expect: [invalid(/^request is not valid JSON: /)] },
  { name: 'binary garbage', writes: [Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256).filter((b) => b !== 0x0a))], expect: [invalid(/^request is not valid JSON: /)] },
  { name: 'a raw NUL byte after the object', writes: [Buffer.concat([Buffer.from(req('ls nul')), Buffer.from([0]), Buffer.from('\n')])], expect: [invalid(/^request is not valid JSON: /)] },
  { name: 'invalid UTF-8 inside a string', writes: [Buffer.concat([Buffer.from('{"agent":"a","tool":"Bash","input":{"command":"echo '), Buffer.from([0xff, 0xc0, 0xaf]), Buffer.from('"}}\n')])], expect: [readOnly] },
  // Valid JSON of the wrong shape.
  { name: 'a JSON array', writes: [line('[1,2]')], expect: [invalid(NOT_OBJECT)] },
  { name: 'a JSON string', writes: [line('"rm -rf /"')], expect: [invalid(NOT_OBJECT)] },
  { name: 'JSON null', writes: [line('null')], expect: [invalid(NOT_OBJECT)] },
  { name: 'an empty object', writes: [line('{}')], expect: [invalid('"agent" must be a non-empty string')] },
  { name: 'an agent name past 256 characters', writes: [line(JSON.stringify({ agent: 'a'.repeat(257), tool: 'Bash', input: {} }))], expect: [invalid('"agent" is longer than 256 characters')] },
  { name: 'a numeric tool', writes: [line('{"agent":"a","tool":7,"input":{}}')], expect: [invalid('"tool" must be a non-empty string')] },
  { name: 'input as a string', writes: [line('{"agent":"a","tool":"Bash","input":"rm -rf /"}')], expect: [invalid('"input" must be a JSON object')] },
  { name: 'context as an array', writes: [line(req('ls', { context: [1] }))], expect: [invalid('"context" must be a JSON object when given')] },
  { name: 'fields hidden under __proto__', writes: [line('{"__proto__":{"agent":"a","tool":"Bash","input":{"command":"ls"}}}')], expect: [invalid('"agent" must be a non-empty string')] },
  { name: 'a number JSON turns into Infinity', writes: [line('{"agent":"a","tool":"Bash","input":{"command":"ls","n":1e999}}')], expect: [invalid('input holds a non-finite number')] },
  { name: 'input nested 100,000 levels deep', writes: [line(nested(100_000))], expect: [invalid('input is nested deeper than 64 levels')] },
  // Disguised dangerous commands.
  { name: 'a duplicate key: the last input wins, as in the parser that runs it', writes: [line('{"agent":"a","tool":"Bash","input":{"command":"ls"},"input":{"command":"rm -rf /"}}')], expect: [builtinDeny('destroy-root-or-home')] },
  { name: 'an escaped NUL hiding the end of a command', writes: [line(req('rm -rf /\u0000 tmp/x'))], expect: [builtinDeny('nul-in-command')] },
  { name: 'no-break spaces between words', writes: [line(req('rm\u00a0-rf\u00a0/'))], expect: [builtinDeny('destroy-root-or-home')] },
  { name: 'right-to-left override in a read-only command', writes: [line(req('ls \u202etxt.exe'))], expect: [readOnly] },
  { name: 'a lone surrogate', writes: [line('{"agent":"a","tool":"Bash","input":{"command":"echo \\ud800"}}')], expect: [readOnly] },
  { name: 'the command as an argument list', writes: [line('{"agent":"a","tool":"Bash","input":{"command":["rm","-rf","/"]}}')], expect: [builtinDeny('destroy-root-or-home')] },
  { name: 'the command under cmd', writes: [line('{"agent":"a","tool":"Bash","input":{"cmd":"mkfs.ext4 /dev/sda1"}}')], expect: [builtinDeny('make-filesystem')] },
  { name: 'shells nested in shells', writes: [line(req(`bash -c "sh -c 'eval rm -rf \\$HOME'"`))], expect: [builtinDeny('destroy-root-or-home')] },
  // Pathological inputs for the old backtracking expressions (seconds to minutes each in V8).
  { name: 'rm -rf with 30 slashes and x, then /', writes: [line(req(`rm -rf ${'/'.repeat(30)}x /`))], expect: [builtinDeny('destroy-root-or-home')] },
  { name: 'echo with 64 KB of a', writes: [line(req(`echo ${'a'.repeat(64 * 1024)}`))], expect: [readOnly] },
  { name: 'a fork bomb after 900 KB of words', writes: [line(req(`${'a '.repeat(450 * 1024)};:(){ :|:& };:`))], expect: [builtinDeny('fork-bomb')] },
  { name: 'a 1 MiB flag of R', writes: [line(req(`rm -${'R'.repeat(MAX_REQUEST_BYTES - 100)}! -r /`))], expect: [builtinDeny('destroy-root-or-home')] },
  // Size.
  { name: 'a request of exactly the limit', writes: [line(req(`echo ${'b'.repeat(MAX_REQUEST_BYTES - 64)}`)).padEnd(MAX_REQUEST_BYTES, ' ')], expect: [readOnly] },
  { name: 'one byte past the limit', writes: [Buffer.alloc(MAX_REQUEST_BYTES, 0x20), 'x'], expect: { writeErrno: 'EFBIG' } },
  // Lines and partial writes.
  { name: 'ls then rm -rf / on one descriptor: each answered, in order', writes: [line(req('ls two-lines')), line(req('rm -rf /'))], expect: [readOnly, builtinDeny('destroy-root-or-home')] },
  { name: 'two requests in one write', writes: [`${line(req('rm -rf /'))}${line(req('pwd'))}`], expect: [builtinDeny('destroy-root-or-home'), readOnly] },
  { name: 'a bad line between good ones', writes: [`${line(req('ls bad-line'))}{oops\n${line(req('rm -rf ~'))}`], expect: [readOnly, invalid(/^request is not valid JSON: /), builtinDeny('destroy-root-or-home')] },
  { name: '64 lines: all answered', writes: [Array.from({ length: 64 }, (_, i) => line(req(i % 2 ? 'rm -rf /' : `ls line-${i}`))).join('')], expect: Array.from({ length: 64 }, (_, i) => (i % 2 ? builtinDeny('destroy-root-or-home') : readOnly)) },
  { name: '65 lines: refused whole', writes: [line(req('rm -rf /')).repeat(65)], expect: [{ error: '65 request lines; at most 64 per read, so none was validated' }] },
  { name: '300,000 empty objects: refused whole', writes: ['{}\n'.repeat(300_000)], expect: [{ error: '300000 request lines; at most 64 per read, so none was validated' }] },
  { name: 'a request split across writes without a newline', writes: ['{"agent":"a","tool":', '"Bash","input":{"command":"rm -r', 'f /"}}'], expect: [builtinDeny('destroy-root-or-home')] },
  { name: 'CRLF line ends', writes: [`${req('ls crlf')}\r\n${req('rm -rf /')}\r\n`], expect: [readOnly, builtinDeny('destroy-root-or-home')] },
];

let root: { dir: string; remove(): Promise<void> };
let store: EventStore;
let validator: Validator;
let mounted: MountedProject;
let mnt: string;

before(async () => {
  root = await tempDir('lhb-adv-validate-');
  mnt = join(root.dir, 'mnt');
  const storeUrl = `file://${join(root.dir, 'store')}`;
  store = await openStore(storeUrl);
  validator = await projectValidator(store, PROJECT, mnt, { storeUrl, logger: createLogger('speed-layer', { level: 'error' }) });
  mounted = await mountProject({ store, project: PROJECT, mountpoint: mnt, actor: 'adversary', validator });
});

after(async () => {
  await mounted?.unmount();
  await validator?.close();
  await store?.close();
  await root?.remove();
});

/** Writes each chunk, then reads the whole answer; or the errno a write failed with. */
async function ask(writes: Array<string | Buffer>): Promise<string | { errno: string }> {
  const fh = await open(join(mnt, '.bridge', 'validate'), 'r+');
  try {
    for (const chunk of writes) {
      try {
        await (typeof chunk === 'string' ? fh.write(chunk) : fh.write(chunk));
      } catch (error) {
        return { errno: (error as NodeJS.ErrnoException).code ?? String(error) };
      }
    }
    const parts: Buffer[] = [];
    for (;;) {
      const { bytesRead, buffer } = await fh.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, null);
      if (bytesRead === 0) break;
      parts.push(buffer.subarray(0, bytesRead));
    }
    return Buffer.concat(parts).toString('utf8');
  } finally {
    await fh.close();
  }
}

async function statMs(path: string): Promise<number> {
  const start = performance.now();
  await stat(path);
  return performance.now() - start;
}

function assertAnswer(got: Record<string, unknown>, want: Expected, where: string): void {
  const { requestId, latencyMs, reason, error, ...rest } = got;
  if (want.decision !== undefined) {
    assert.match(String(requestId), /^[0-9a-f-]{36}$/, where);
    assert.equal(typeof latencyMs, 'number', where);
    assert.equal(typeof reason, 'string', where);
  }
  const { error: wantError, ...wantRest } = want;
  assert.deepEqual(rest, wantRest, where);
  if (wantError instanceof RegExp) assert.match(String(error), wantError, where);
  else assert.equal(error, wantError, where);
}

door('.bridge/validate', rows, async (row) => {
  const headBefore = mounted.workspace.head;
  const started = performance.now();
  const got = await ask(row.writes);
  const tookMs = performance.now() - started;
  assert.ok(tookMs < ANSWER_BUDGET_MS, `answered after ${tookMs.toFixed(0)} ms`);
  if ('writeErrno' in row.expect) {
    assert.deepEqual(got, { errno: row.expect.writeErrno });
  } else {
    assert.equal(typeof got, 'string');
    const text = got as string;
    assert.ok(text.endsWith('\n'), 'every answer line ends with a newline');
    const lines = text.slice(0, -1).split('\n');
    assert.equal(lines.length, row.expect.length, `answer lines: ${text.slice(0, 500)}`);
    row.expect.forEach((want, i) => assertAnswer(JSON.parse(lines[i] as string) as Record<string, unknown>, want, `line ${i + 1}: ${lines[i]?.slice(0, 300)}`));
  }
  // Nothing recorded, nothing left behind, and the mount answers at once.
  assert.equal(mounted.workspace.head, headBefore, 'no event was recorded');
  assert.deepEqual(await readdir(join(mnt, 'current')), []);
  const ms = await statMs(join(mnt, '.bridge', 'status'));
  assert.ok(ms < STAT_BUDGET_MS, `stat took ${ms.toFixed(0)} ms`);
});

describe('adversarial: .bridge/validate keeps the mount answering', () => {
  it('a stat on the mount is not delayed while the largest, slowest requests are judged', async () => {
    const slow = [
      [line(req(`echo ${'a'.repeat(MAX_REQUEST_BYTES - 100)}`))],
      [line(req(`rm -rf ${'/'.repeat(40)}x /`))],
      [line(req(`${'a '.repeat(450 * 1024)};:(){ :|:& };:`))],
    ];
    let judging = true;
    const answers = Promise.all(slow.map((writes) => ask(writes))).finally(() => (judging = false));
    let worst = 0;
    let stats = 0;
    while (judging) {
      worst = Math.max(worst, await statMs(join(mnt, '.bridge', 'status')));
      stats++;
      await new Promise((r) => setTimeout(r, 5));
    }
    const lines = (await answers).map((a) => JSON.parse(a as string) as { decision: string });
    assert.deepEqual(lines.map((l) => l.decision), ['allow', 'deny', 'deny']);
    assert.ok(stats >= 1);
    assert.ok(worst < STAT_BUDGET_MS, `a stat took ${worst.toFixed(0)} ms while requests were judged`);
  });
});
