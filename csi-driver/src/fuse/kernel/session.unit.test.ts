import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BridgeFs } from '../bridgeFs.js';
import { E, fsError } from '../errno.js';
import { ENTRY_OUT, IN_HEADER, Op, OUT_HEADER, ROOT_ID } from './protocol.js';
import { FuseSession } from './session.js';

/** A LOOKUP of `name` in the root, as the kernel writes it. */
function lookup(name: string, unique: number): Buffer {
  const raw = Buffer.alloc(IN_HEADER + Buffer.byteLength(name) + 1);
  raw.writeUInt32LE(raw.length, 0);
  raw.writeUInt32LE(Op.LOOKUP, 4);
  raw.writeBigUInt64LE(BigInt(unique), 8);
  raw.writeBigUInt64LE(BigInt(ROOT_ID), 16);
  raw.write(name, IN_HEADER);
  return raw;
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
    } as unknown as BridgeFs;
    const session = new FuseSession({
      fs,
      project: { namespace: 'unit', name: 'session' },
      cache: { entry: 0.05, attr: 0.05, negative: 0.05 },
      rememberMissing: () => remember,
      send: (reply) => replies.push(reply),
      report: (op, error) => assert.fail(`${op}: ${String(error)}`),
    });

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
