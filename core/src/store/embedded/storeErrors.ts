import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { StoreUnavailableError } from '../eventStore.js';

/**
 * The log holds bytes that are not a torn tail: acknowledged records would be lost by cutting
 * them off, so the store refuses to go on instead of repairing silently. (Its `name` stays that
 * of the base class, whose type fixes it; callers that map errors only need the base class.)
 */
export class CorruptLogError extends StoreUnavailableError {}

/** Runs an fs operation and maps its failure to `StoreUnavailableError` naming what failed. */
export async function io<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    throw asStoreError(what, error);
  }
}

export function asStoreError(what: string, error: unknown): Error {
  if (error instanceof StoreUnavailableError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return new StoreUnavailableError(`embedded store: ${what} failed${code ? ` (${code})` : ''}: ${(error as Error).message}`, { cause: error });
}

export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** stat(2), or undefined for a path that is not there. */
export async function statIfPresent(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}
