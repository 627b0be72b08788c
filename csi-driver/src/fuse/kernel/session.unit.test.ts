import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BridgeFs } from '../bridgeFs.js';
import { E, fsError } from '../errno.js';
import type { FuseStat } from '../attributes.js';
import { DIRENT_HEADER, ENTRY_OUT, IN_HEADER, Op, OUT_HEADER, ROOT_ID } from './protocol.js';
import { FuseSession, type SessionOptions } from './session.js';

/** A request to the root as the kernel writes it: header, then `body`. */
function request(opcode: number, unique: number, body: Buffer): Buffer {
  const raw = Buffer.alloc(IN_HEADER + body.length);
  raw.writeUInt32LE(raw.length, 0);
  raw.writeUInt32LE(opcode, 4);
  raw.writeBigUInt64LE(BigInt(unique), 8);
  raw.writeBigUInt64LE(BigInt(ROOT_ID), 16);
  body.copy(raw, IN_HEADER);
  return raw;
}

/** A LOOKUP of `name` in the root. */
function lookup(name: string, unique: number): Buffer {
  return request(Op.LOOKUP, unique, Buffer.from(`${name}\0`));
}

/** fuse_read_in of a READDIR/READDIRPLUS: handle, offset, size. */
function readIn(fh: number, offset: number, size: number): Buffer {
  const body = Buffer.alloc(40);
  body.writeBigUInt64LE(BigInt(fh), 0);
  body.writeBigUInt64LE(BigInt(offset), 8);
  body.writeUInt32LE(size, 16);
  return body;
}

/** The records of a READDIRPLUS reply: node id, entry timeout (ns part), and the dirent's fields. */
function direntplus(reply: Buffer): Array<{ node: bigint; ino: bigint; next: bigint; type: number; name: string; size: bigint }> {
  const records = [];
  for (let at = OUT_HEADER; at < reply.length; ) {
    const d = at + ENTRY_OUT;
    const length = reply.readUInt32LE(d + 16);
    records.push({
      node: reply.readBigUInt64LE(at),
      size: reply.readBigUInt64LE(at + 40 + 8),
      ino: reply.readBigUInt64LE(d),
      next: reply.readBigUInt64LE(d + 8),
      type: reply.readUInt32LE(d + 20),
      name: reply.toString('utf8', d + DIRENT_HEADER, d + DIRENT_HEADER + length),
    });
    at += (ENTRY_OUT + DIRENT_HEADER + length + 7) & ~7;
  }
  return records;
}

/** A session over `fs` whose replies land in `replies`; any reported failure fails the test. */
function sessionOver(fs: Partial<Record<keyof BridgeFs, unknown>>, replies: Buffer[], extra: Partial<SessionOptions> = {}): FuseSession {
  return new FuseSession({
    fs: fs as BridgeFs,
    project: { namespace: 'unit', name: 'session' },
    cache: { entry: 0.05, attr: 0.05, negative: 0.05 },
    send: (reply) => replies.push(reply),
    report: (op, error) => assert.fail(`${op}: ${String(error)}`),
    ...extra,
  });
}

/** OPENDIR of the root: the handle to list it with. */
function openRoot(session: FuseSession, replies: Buffer[]): number {
  session.handle(request(Op.OPENDIR, 1, Buffer.alloc(8)));
  return Number(replies.pop()!.readBigUInt64LE(OUT_HEADER));
}

describe('FuseSession: a name that does not exist', () => {
  it('is a negative entry the kernel may keep, except while a missing name must not be remembered (ADR 0092)', () => {
    const replies: Buffer[] = [];
    let remember = true;
    // Only getattr is reached by a LOOKUP; every name is missing.
    const fs = {
      getattr: (path: string) => {
        throw fsError(E.ENOENT, `${path} does not exist`);
      },
    };
    const session = sessionOver(fs, replies, { rememberMissing: () => remember });

    session.handle(lookup('missing', 1));
    const negative = replies.pop()!;
    assert.equal(negative.length, OUT_HEADER + ENTRY_OUT, 'an entry reply');
    assert.equal(negative.readInt32LE(4), 0);
    assert.equal(negative.readBigUInt64LE(OUT_HEADER), 0n, 'node id 0: "does not exist"');
    assert.equal(negative.readUInt32LE(OUT_HEADER + 32), 50_000_000, 'kept for 50 ms');

    remember = false;
    session.handle(lookup('missing', 2));
    const refused = replies.pop()!;
    assert.equal(refused.length, OUT_HEADER, 'an error reply: nothing for the kernel to keep');
    assert.equal(refused.readInt32LE(4), E.ENOENT);
  });
});

describe('FuseSession: READDIRPLUS', () => {
  const file = (size: number): FuseStat => ({ mode: 0o100644, size, mtime: 0, atime: 0, ctime: 0, uid: 0, gid: 0, nlink: 1 });
  const dir: FuseStat = { ...file(0), mode: 0o40755, nlink: 2 };

  it('lists each name that fits with its node and attributes at hand, counts it as a lookup, and looks only at what it sends', () => {
    const names = Array.from({ length: 100 }, (_, i) => `file-${i}`);
    const statted: string[] = [];
    const fs = {
      readdir: () => [...names, 'gone', 'not-loaded', 'sub'],
      getattr: () => assert.fail('a listing loads nothing: only what is at hand'),
      getattrAtHand: (path: string) => {
        statted.push(path);
        if (path === '/gone') throw fsError(E.ENOENT, 'removed after the listing');
        // A past view not restored yet: nothing at hand.
        if (path === '/not-loaded') return undefined;
        if (path === '/sub') return dir;
        return file(Number(path.slice('/file-'.length)));
      },
    };
    const replies: Buffer[] = [];
    const session = sessionOver(fs, replies);
    const fh = openRoot(session, replies);

    session.handle(request(Op.READDIRPLUS, 2, readIn(fh, 0, 4096)));
    const first = direntplus(replies.pop()!);
    // 160 bytes each (152 of entry and dirent header, the name, padding to 8): 25 records in 4 KiB.
    assert.equal(first.length, 25);
    assert.deepEqual(first.slice(0, 3).map((r) => [r.name, r.node]), [['.', 0n], ['..', 0n], ['file-0', first[2]!.node]]);
    assert.ok(first[2]!.node > BigInt(ROOT_ID));
    assert.equal(first[12]!.size, 10n, 'the attributes of file-10');
    assert.equal(first[12]!.ino, first[12]!.node, 'd_ino is the node id stat shows');
    assert.equal(first[12]!.type, 8, 'DT_REG');
    assert.deepEqual(first.map((r) => r.next), first.map((_, i) => BigInt(i + 1)));
    assert.equal(statted.length, 23, 'only the names sent were looked at');
    assert.equal(session.nodes.get(Number(first[12]!.node))?.lookups, 1);

    // The rest, from where the kernel stopped; what is not at hand is listed without an entry.
    let offset = Number(first.at(-1)!.next);
    const rest: ReturnType<typeof direntplus> = [];
    for (let unique = 3; offset < names.length + 5; unique++) {
      session.handle(request(Op.READDIRPLUS, unique, readIn(fh, offset, 4096)));
      const records = direntplus(replies.pop()!);
      rest.push(...records);
      offset = Number(records.at(-1)!.next);
    }
    for (const name of ['gone', 'not-loaded']) {
      const record = rest.find((r) => r.name === name)!;
      assert.equal(record.node, 0n, `${name}: listed without an entry`);
      assert.equal(record.type, 0, `${name}: DT_UNKNOWN, nothing known of it`);
    }
    const sub = rest.find((r) => r.name === 'sub')!;
    assert.equal(sub.type, 4, 'DT_DIR');
    assert.equal(first.length + rest.length, names.length + 5);

    // Listed again: the same node, counted again; a FORGET of both lookups drops it.
    session.handle(request(Op.READDIRPLUS, 100, readIn(fh, 0, 4096)));
    const again = direntplus(replies.pop()!);
    assert.equal(again[12]!.node, first[12]!.node);
    assert.equal(session.nodes.get(Number(first[12]!.node))?.lookups, 2);
    const forget = Buffer.alloc(8);
    forget.writeBigUInt64LE(2n, 0);
    const raw = request(Op.FORGET, 101, forget);
    raw.writeBigUInt64LE(first[12]!.node, 16);
    session.handle(raw);
    assert.equal(session.nodes.get(Number(first[12]!.node)), undefined);
  });

  it('lists a name whose node cannot be journaled without an entry, and still sends the names counted before it', () => {
    const replies: Buffer[] = [];
    const session = sessionOver({ readdir: () => ['a', 'b', 'c', 'd'], getattrAtHand: () => file(1) }, replies, {
      journal: {
        added: (node) => {
          if (node.name === 'c') throw new Error('journal: no space left on device');
        },
        moved: () => undefined,
        dropped: () => undefined,
        opened: () => undefined,
        closed: () => undefined,
      },
    });
    const fh = openRoot(session, replies);
    session.handle(request(Op.READDIRPLUS, 2, readIn(fh, 0, 4096)));
    const reply = replies.pop()!;
    assert.equal(reply.readInt32LE(4), 0, 'a listing, not an error the kernel would drop every counted name with');
    const records = direntplus(reply);
    assert.deepEqual(records.map((r) => [r.name, r.node > 0n]), [['.', false], ['..', false], ['a', true], ['b', true], ['c', false], ['d', true]]);
    for (const r of records.filter((r) => r.node > 0n)) assert.equal(session.nodes.get(Number(r.node))?.lookups, 1);
  });
});
