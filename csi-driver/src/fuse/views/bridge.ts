import type { FuseStat } from '../attributes.js';
import { formatProjectId, type ProjectWorkspace } from '@lighthouse-bridge/core';
import { MAX_REQUEST_BYTES } from '@lighthouse-bridge/core/speed-layer';
import { E, fsError } from '../errno.js';
import { BytesHandle, type Handle } from '../handles.js';
import { BRIDGE_ENTRIES, type At } from '../layout.js';
import { renderJson } from '../renderers.js';
import { validateAnswers, type ValidateBackend } from '../validation.js';
import type { WriteBudget } from '../writeBudget.js';
import type { Stats } from './stats.js';
import type { View } from './view.js';

type BridgeAt = At<'bridgeDir' | 'bridgeStatus' | 'bridgeValidate'>;

/** What only the dispatcher knows about the mount, for `.bridge/status`. */
export interface MountFigures {
  closed: boolean;
  openHandles: number;
  openFiles: number;
  streamReaders: number;
  lastError: string | undefined;
}

export interface BridgeViewOptions {
  mountpoint: string;
  readOnly: boolean;
  validator: ValidateBackend | undefined;
  budget: WriteBudget;
  figures: () => MountFigures;
}

/** `.bridge/`: the mount talking about itself (`status`) and answering requests (`validate`). */
export class BridgeView implements View<BridgeAt> {
  constructor(
    private readonly workspace: ProjectWorkspace,
    private readonly stats: Stats,
    private readonly options: BridgeViewOptions,
  ) {}

  getattr(at: BridgeAt): FuseStat {
    switch (at.view) {
      case 'bridgeDir':
        return this.stats.dir(0o555);
      case 'bridgeStatus':
        return this.stats.file(0o444, 0, Date.now());
      case 'bridgeValidate':
        return this.stats.file(0o666, 0);
    }
  }

  readdir(at: BridgeAt): string[] {
    if (at.view !== 'bridgeDir') throw fsError(E.ENOTDIR, '.bridge/ holds only files');
    return [...BRIDGE_ENTRIES];
  }

  open(at: BridgeAt): Handle {
    switch (at.view) {
      case 'bridgeDir':
        throw fsError(E.EISDIR, '.bridge is a directory');
      case 'bridgeStatus':
        return new BytesHandle(renderJson(this.status()), 'direct');
      case 'bridgeValidate':
        return new ValidateHandle(this.options.validator);
    }
  }

  status(): Record<string, unknown> {
    const ws = this.workspace;
    const { mountpoint, readOnly, validator, budget } = this.options;
    const figures = this.options.figures();
    // Acknowledged events lost in the store: writes are refused (EIO) and the mount is not healthy.
    const logRegression = ws.store.logRegression?.(ws.project);
    return {
      project: formatProjectId(ws.project),
      head: ws.head,
      headTime: ws.state.time || null,
      store: { kind: ws.store.kind, location: ws.store.location, logRegression: logRegression ?? null },
      mountpoint,
      readOnly,
      files: ws.state.fileCount,
      bytes: ws.state.totalBytes,
      limits: ws.limits,
      cache: { blobs: ws.cacheStats },
      mount: {
        healthy: !figures.closed && logRegression === undefined,
        uptimeSeconds: Math.round((Date.now() - this.stats.mountedAtMs) / 1000),
        openHandles: figures.openHandles,
        openFiles: figures.openFiles,
        writeBufferBytes: budget.usedBytes,
        writeBufferLimit: budget.limit,
        streamReaders: figures.streamReaders,
        lastError: figures.lastError ?? null,
      },
      validator: validator ? 'configured' : 'none',
    };
  }
}

/**
 * `.bridge/validate` open: request lines written, then read back as one answer line each. A write
 * after an answer starts the next request, so one descriptor can ask many times.
 */
class ValidateHandle implements Handle {
  // The answer is read back from the descriptor the request was written to: no page cache between.
  readonly cache = 'direct';
  readonly flushes = false;
  private request: Buffer[] = [];
  private requestBytes = 0;
  private answer: Buffer | undefined;
  private answerOffset = 0;

  constructor(private readonly validator: ValidateBackend | undefined) {}

  async read(target: Buffer, length: number): Promise<number> {
    if (this.answer === undefined) {
      this.answer = Buffer.from(await validateAnswers(Buffer.concat(this.request).toString('utf8'), this.validator));
      this.answerOffset = 0;
    }
    const n = this.answer.copy(target, 0, this.answerOffset, Math.min(this.answer.length, this.answerOffset + length));
    this.answerOffset += n;
    return n;
  }

  write(source: Buffer, length: number): number {
    if (this.answer !== undefined) {
      this.answer = undefined;
      this.answerOffset = 0;
      this.truncate();
    }
    // The request is held in memory until read back: the speed layer's own limit bounds it.
    if (this.requestBytes + length > MAX_REQUEST_BYTES) throw fsError(E.EFBIG, `a validate request is at most ${MAX_REQUEST_BYTES} bytes`);
    this.request.push(Buffer.from(source.subarray(0, length)));
    this.requestBytes += length;
    return length;
  }

  truncate(): void {
    this.request = [];
    this.requestBytes = 0;
  }

  flush(): void {}

  fsync(): void {}

  release(): void {}
}
