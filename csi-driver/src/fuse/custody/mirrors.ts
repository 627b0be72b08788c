import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { ContentMirror } from '../handles.js';
import type { RestoredMirror } from '../bridgeFs.js';

/** A mirror file no writer uses now, emptied, for the next writer (no create and unlink per file). */
interface Spare {
  name: string;
  path: string;
  fd: number;
}

/** Spare files kept per mount: enough for writers working side by side, few enough to cost no descriptors to speak of. */
const SPARES = 8;

/** One writer's content as a file: written with pwrite before the write(2) is acknowledged. */
class FileMirror implements ContentMirror {
  private fd: number | undefined;

  constructor(
    readonly name: string,
    private readonly path: string,
    fd: number,
    private readonly spares?: Spare[],
  ) {
    this.fd = fd;
  }

  write(source: Buffer, length: number, position: number): void {
    if (this.fd !== undefined) writeSync(this.fd, source, 0, length, position);
  }

  truncate(size: number): void {
    if (this.fd !== undefined) ftruncateSync(this.fd, size);
  }

  discard(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    // Emptied before reuse: a successor finds only what open writers wrote (spares are unclaimed).
    if (this.spares && this.spares.length < SPARES) {
      ftruncateSync(fd, 0);
      this.spares.push({ name: this.name, path: this.path, fd });
      return;
    }
    closeSync(fd);
    unlinkSync(this.path);
  }
}

/**
 * The mount's directory of writer mirrors (custody, ADR 0083). What a writer was told landed lives
 * here as well as in the process, so a successor restores it; files are named per process so a
 * successor's never collide with its predecessor's.
 */
export class MirrorDirectory {
  private next = 0;
  private readonly restored = new Map<string, RestoredMirror>();
  private readonly spares: Spare[] = [];

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  create(content: Buffer): ContentMirror {
    const spare = this.spares.pop();
    const name = spare?.name ?? `${process.pid}-${++this.next}`;
    const path = spare?.path ?? join(this.dir, name);
    const fd = spare?.fd ?? openSync(path, 'w+', 0o600);
    if (content.length > 0) writeSync(fd, content, 0, content.length, 0);
    return new FileMirror(name, path, fd, this.spares);
  }

  /** A predecessor's mirror by name (one object per name, shared by the handles that wrote it). */
  restore(name: string): RestoredMirror | undefined {
    if (!/^\d+-\d+$/.test(name)) return undefined;
    let found = this.restored.get(name);
    if (!found) {
      const path = join(this.dir, name);
      let fd: number;
      try {
        fd = openSync(path, 'r+');
      } catch {
        return undefined;
      }
      found = { mirror: new FileMirror(name, path, fd), content: () => readFileSync(path) };
      this.restored.set(name, found);
    }
    return found;
  }

  /** The mount is gone: spare files closed (their directory is removed with the mount's). */
  close(): void {
    for (let spare = this.spares.pop(); spare; spare = this.spares.pop()) closeSync(spare.fd);
  }

  /** Mirrors no restored handle claimed: their writers were released before the predecessor died. */
  removeUnclaimed(): void {
    for (const name of readdirSync(this.dir)) if (!this.restored.has(name)) rmSync(join(this.dir, name), { force: true });
  }
}
