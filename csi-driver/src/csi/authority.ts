import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * Kubelets before 1.26 (grpc-go dialing a bare socket path) send the socket's path as the HTTP/2
 * `:authority`, e.g. `/var/lib/kubelet/plugins/bridge.lighthouse.dev/csi.sock`. Node's nghttp2
 * refuses such a header with a stream reset (PROTOCOL_ERROR) before grpc-js sees the call, and no
 * Node option turns that check off. So incoming bytes pass through this rewriter, which replaces
 * path-like (and Huffman-coded, which it cannot read) `:authority` values with a one-character
 * host before the HTTP/2 session parses them. ADR 0072.
 *
 * HPACK keeps a dynamic table on both ends. The rewritten value is never longer than the original,
 * so the server's table evicts no earlier than the client's and every index the client sends still
 * names the same entry.
 */
class AuthorityRewriter {
  private pending: Buffer = Buffer.alloc(0);
  private prefaceLeft = 24;
  private headers: { stream: number; flags: number; priority: Buffer | undefined; fragments: Buffer[] } | undefined;

  /** Feeds bytes from the client; returns the bytes to hand to the HTTP/2 server. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let data: Buffer = chunk;
    if (this.prefaceLeft > 0) {
      const take = Math.min(this.prefaceLeft, data.length);
      out.push(data.subarray(0, take));
      this.prefaceLeft -= take;
      data = data.subarray(take);
    }
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    while (this.pending.length >= 9) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < 9 + length) break;
      const frame = this.pending.subarray(0, 9 + length);
      this.pending = this.pending.subarray(9 + length);
      out.push(...this.frame(frame));
    }
    return out;
  }

  private frame(frame: Buffer): Buffer[] {
    const type = frame[3] ?? 0;
    const flags = frame[4] ?? 0;
    const stream = frame.readUInt32BE(5) & 0x7fffffff;
    const payload = frame.subarray(9);
    if (type === HEADERS) {
      let offset = 0;
      let padding = 0;
      if (flags & PADDED) {
        padding = payload[0] ?? 0;
        offset = 1;
      }
      const priority = flags & PRIORITY ? payload.subarray(offset, offset + 5) : undefined;
      if (priority) offset += 5;
      if (offset + padding > payload.length) return [frame];
      this.headers = { stream, flags, priority, fragments: [payload.subarray(offset, payload.length - padding)] };
    } else if (type === CONTINUATION && this.headers) {
      this.headers.fragments.push(payload);
    } else {
      return [frame];
    }
    if (!(flags & END_HEADERS)) return [];
    const { stream: id, flags: first, priority, fragments } = this.headers;
    this.headers = undefined;
    return encodeHeaders(id, first, priority, rewriteBlock(Buffer.concat(fragments)));
  }
}

const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
/** The smallest SETTINGS_MAX_FRAME_SIZE a peer may have; frames we rebuild never exceed it. */
const MAX_FRAME = 16384;
/** `:authority` is entry 1 of the HPACK static table. */
const AUTHORITY_INDEX = 1;
const REPLACEMENT = Buffer.from([0x01, 0x6c]); // raw string "l"

function encodeHeaders(stream: number, flags: number, priority: Buffer | undefined, block: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let rest = block;
  let first = true;
  do {
    const room = MAX_FRAME - (first && priority ? 5 : 0);
    const chunk = rest.subarray(0, room);
    rest = rest.subarray(chunk.length);
    const prefix = first && priority ? priority : Buffer.alloc(0);
    let frameFlags = rest.length === 0 ? END_HEADERS : 0;
    if (first) frameFlags |= flags & (END_STREAM | PRIORITY);
    const header = Buffer.alloc(9);
    header.writeUIntBE(prefix.length + chunk.length, 0, 3);
    header[3] = first ? HEADERS : CONTINUATION;
    header[4] = frameFlags;
    header.writeUInt32BE(stream, 5);
    frames.push(Buffer.concat([header, prefix, chunk]));
    first = false;
  } while (rest.length > 0);
  return frames;
}

/** Rewrites `:authority` literals in one HPACK header block; a block it cannot walk passes as is. */
function rewriteBlock(block: Buffer): Buffer {
  try {
    const parts: Buffer[] = [];
    let i = 0;
    while (i < block.length) {
      const byte = block[i] ?? 0;
      if (byte & 0x80) {
        const end = readInteger(block, i, 7).next;
        parts.push(block.subarray(i, end));
        i = end;
      } else if ((byte & 0xe0) === 0x20) {
        const end = readInteger(block, i, 5).next;
        parts.push(block.subarray(i, end));
        i = end;
      } else {
        const prefix = (byte & 0xc0) === 0x40 ? 6 : 4;
        const start = i;
        const name = readInteger(block, i, prefix);
        let authority = name.value === AUTHORITY_INDEX;
        i = name.next;
        if (name.value === 0) {
          const literal = readString(block, i);
          authority = !literal.huffman && block.subarray(literal.start, literal.end).toString('latin1') === ':authority';
          i = literal.end;
        }
        const valueStart = i;
        const value = readString(block, i);
        i = value.end;
        const text = block.subarray(value.start, value.end);
        const rewrite = authority && value.end > value.start && (value.huffman || text.includes(0x2f));
        parts.push(rewrite ? Buffer.concat([block.subarray(start, valueStart), REPLACEMENT]) : block.subarray(start, i));
      }
    }
    return Buffer.concat(parts);
  } catch {
    return block;
  }
}

function readInteger(buffer: Buffer, at: number, prefixBits: number): { value: number; next: number } {
  const max = (1 << prefixBits) - 1;
  const first = buffer[at];
  if (first === undefined) throw new RangeError('truncated HPACK integer');
  let value = first & max;
  let next = at + 1;
  if (value < max) return { value, next };
  let shift = 0;
  for (;;) {
    const byte = buffer[next++];
    if (byte === undefined || shift > 28) throw new RangeError('bad HPACK integer');
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(byte & 0x80)) return { value, next };
  }
}

function readString(buffer: Buffer, at: number): { huffman: boolean; start: number; end: number } {
  const huffman = ((buffer[at] ?? 0) & 0x80) !== 0;
  const length = readInteger(buffer, at, 7);
  const end = length.next + length.value;
  if (end > buffer.length) throw new RangeError('truncated HPACK string');
  return { huffman, start: length.next, end };
}

/** The client socket as grpc-js should see it: the same bytes, with `:authority` made acceptable. */
export function withAcceptableAuthority(socket: Socket): Duplex {
  const rewriter = new AuthorityRewriter();
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      // Write failures mean the client is gone; its socket's 'close' ends the session.
      if (socket.destroyed) return callback();
      socket.write(chunk, () => callback());
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  socket.on('data', (data: Buffer) => {
    for (const part of rewriter.push(data)) {
      if (!duplex.push(part)) socket.pause();
    }
  });
  socket.on('end', () => duplex.push(null));
  // A client that goes away (ECONNRESET, EPIPE) just ends its session; passed on as an error it
  // would surface as an unhandled 'error' on the wrapper and take the plugin down.
  socket.on('error', () => duplex.destroy());
  socket.on('close', () => duplex.destroy());
  return duplex;
}
