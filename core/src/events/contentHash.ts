import { createHash } from 'node:crypto';

/** File content lives beside the log as a blob named by its sha256 in lowercase hex (see events.ts). */
export function contentHash(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Whether `text` can name a blob at all: 64 lowercase hex digits. */
export function isContentHash(text: string): boolean {
  return SHA256_HEX.test(text);
}
