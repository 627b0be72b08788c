import { readdir } from 'node:fs/promises';
import { isNotFound } from './storeErrors.js';

/**
 * Files named by a sequence number, zero-padded to 20 digits so names sort as numbers do:
 * segments (`<firstSeq>.seg`) and snapshots (`<seq>.snap`).
 */
export function seqFileName(seq: number, extension: string): string {
  return `${String(seq).padStart(20, '0')}${extension}`;
}

/** The sequence numbers of the `extension` files in `dir`, ascending; [] when `dir` does not exist. */
export async function listSeqFiles(dir: string, extension: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
  return names
    .filter((name) => name.endsWith(extension) && /^\d{20}$/.test(name.slice(0, -extension.length)))
    .map((name) => Number(name.slice(0, 20)))
    .sort((a, b) => a - b);
}
