import type { ChainableCommander } from 'ioredis';
import { StoreUnavailableError } from '../eventStore.js';
import type { RedisClient } from '../../redis/client.js';
import { chunkKey } from '../../redis/keys.js';

/**
 * Large values (blobs, snapshots) are split so no single Redis value exceeds 512 KiB: big values
 * stall the server for every other client while they are copied, and replicas and proxies often
 * cap them. The value at `key` is a small hash header:
 *   size    total bytes
 *   chunks  number of chunk keys `key:0 .. key:N-1` (plain strings of CHUNK_BYTES, the last shorter)
 *   data    the content itself when it fits in one chunk (chunks = 0), saving a key and a round trip
 * plus any caller fields (a snapshot's seq and time).
 */
export const CHUNK_BYTES = 256 * 1024;

/** A chunked value that is incomplete or not what its header says. */
export class CorruptValueError extends StoreUnavailableError {}

/** Queues the writes of `content` under `key` (header and chunks) on a MULTI or pipeline. */
export function queueChunkedWrite(batch: ChainableCommander, key: string, content: Buffer, fields: Record<string, string> = {}): void {
  if (content.length <= CHUNK_BYTES) {
    batch.hset(key, singleChunk(content, fields));
    return;
  }
  const chunks = Math.ceil(content.length / CHUNK_BYTES);
  for (let i = 0; i < chunks; i++) {
    batch.set(chunkKey(key, i), content.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES));
  }
  batch.hset(key, { ...fields, size: String(content.length), chunks: String(chunks) });
}

/** The header of content up to CHUNK_BYTES, which holds the content itself: one HSET writes it whole. */
export function singleChunk(content: Buffer, fields: Record<string, string> = {}): Record<string, string | Buffer> {
  return { ...fields, size: String(content.length), chunks: '0', data: content };
}

/** The keys a chunked value with `chunks` chunks occupies, header included. */
export function chunkedKeys(key: string, chunks: number): string[] {
  return [key, ...Array.from({ length: chunks }, (_, i) => chunkKey(key, i))];
}

export interface ChunkedValue {
  /** The header's fields other than the chunking ones, as text. */
  fields: Record<string, string>;
  content: Buffer;
}

/** Reads a chunked value; undefined when `key` does not exist. */
export async function readChunked(client: RedisClient, key: string): Promise<ChunkedValue | undefined> {
  const header = await client.hgetallBuffer(key);
  const sizeField = header['size'];
  if (sizeField === undefined) return undefined;
  const size = Number(sizeField.toString());
  const chunks = Number(header['chunks']?.toString() ?? 'NaN');
  let content: Buffer;
  if (chunks === 0) {
    content = header['data'] ?? Buffer.alloc(0);
  } else if (Number.isInteger(chunks) && chunks > 0) {
    const parts = await client.mgetBuffer(...chunkedKeys(key, chunks).slice(1));
    if (parts.some((p) => p === null)) throw new CorruptValueError(`${key}: chunk missing`);
    content = Buffer.concat(parts as Buffer[]);
  } else {
    throw new CorruptValueError(`${key}: bad header`);
  }
  if (content.length !== size) throw new CorruptValueError(`${key}: ${content.length} bytes, header says ${size}`);
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name !== 'size' && name !== 'chunks' && name !== 'data') fields[name] = value.toString();
  }
  return { fields, content };
}

/** Runs a MULTI and throws the first error any of its commands met. */
export async function execOrThrow(batch: ChainableCommander): Promise<unknown[]> {
  const results = await batch.exec();
  if (results === null) throw new StoreUnavailableError('transaction aborted');
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
