import type { FuseStat } from '../attributes.js';
import { joinPath, type ProjectWorkspace } from '@lighthouse-bridge/core';
import { E, fsError } from '../errno.js';
import { BytesHandle, copyAt, type Handle } from '../handles.js';
import type { At } from '../layout.js';
import { renderJson } from '../renderers.js';
import type { WriteBudget } from '../writeBudget.js';
import type { Stats } from './stats.js';
import { requireDirectory, type Result, type View } from './view.js';

const SHADOW_SUFFIX = '.json';
/** Room in a shadow write for the JSON around an annotation's text. */
const ANNOTATION_ENVELOPE_BYTES = 4096;

/**
 * `shadows/`: the project's directories, and beside each file or annotated path a `<name>.json`
 * holding its annotations. Writing one records an annotation (one JSON object) when it is closed.
 */
export class ShadowsView implements View<At<'shadows'>> {
  constructor(
    private readonly workspace: ProjectWorkspace,
    private readonly stats: Stats,
    private readonly readOnly: boolean,
    private readonly budget: WriteBudget,
  ) {}

  getattr({ path }: At<'shadows'>): FuseStat {
    const target = this.target(path);
    if (target === undefined) throw fsError(E.ENOENT, `shadows/${path} does not exist`);
    if (target === '') return this.stats.dir(this.readOnly ? 0o555 : 0o755);
    return this.stats.file(this.readOnly ? 0o444 : 0o644, this.render(target).length);
  }

  readdir({ path }: At<'shadows'>): string[] {
    const state = this.workspace.state;
    return [...requireDirectory(state, path).children].map((name) =>
      state.nodes.get(joinPath(path, name))?.kind === 'directory' ? name : `${name}${SHADOW_SUFFIX}`,
    );
  }

  open({ path }: At<'shadows'>, writing: boolean): Handle {
    const target = this.target(path);
    if (target === undefined) throw fsError(E.ENOENT, `shadows/${path} does not exist`);
    if (target === '') throw fsError(E.EISDIR, `shadows/${path} is a directory`);
    if (writing) return new ShadowHandle(target, this);
    return new BytesHandle(this.render(target), 'direct');
  }

  /** `''` for a directory, the annotated project path for a `<path>.json`, undefined when absent. */
  private target(rel: string): string | undefined {
    const state = this.workspace.state;
    if (rel === '' || state.nodes.get(rel)?.kind === 'directory') return '';
    if (!rel.endsWith(SHADOW_SUFFIX)) return undefined;
    const base = rel.slice(0, -SHADOW_SUFFIX.length);
    const node = state.nodes.get(base);
    return (node && node.kind !== 'directory') || state.annotations.has(base) ? base : undefined;
  }

  render(path: string): Buffer {
    return renderJson(this.workspace.state.annotations.get(path) ?? []);
  }

  /** A shadow write is one annotation as JSON: its text at the project's limit, plus room for the rest. */
  get maxRequestBytes(): number {
    return this.workspace.limits.maxAnnotationBytes + ANNOTATION_ENVELOPE_BYTES;
  }

  reserve(bytes: number, path: string): void {
    this.budget.reserve(bytes, path);
  }

  unreserve(bytes: number): void {
    this.budget.release(bytes);
  }

  async annotate(path: string, request: Buffer): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(request.toString('utf8'));
    } catch {
      throw fsError(E.EINVAL, 'an annotation is a JSON object {"text": ..., "line"?: n, "tags"?: [...]}');
    }
    const { text, line, tags } = (body ?? {}) as { text?: unknown; line?: unknown; tags?: unknown };
    if (typeof text !== 'string') throw fsError(E.EINVAL, 'annotation "text" must be a string');
    if (line !== undefined && !(Number.isSafeInteger(line) && (line as number) > 0)) throw fsError(E.EINVAL, 'annotation "line" must be a positive integer');
    if (tags !== undefined && !(Array.isArray(tags) && tags.every((t) => typeof t === 'string'))) throw fsError(E.EINVAL, 'annotation "tags" must be strings');
    const command: { type: 'Annotate'; path: string; text: string; line?: number; tags?: string[] } = { type: 'Annotate', path, text };
    if (line !== undefined) command.line = line as number;
    if (tags !== undefined) command.tags = tags as string[];
    await this.workspace.execute(command);
  }
}

/**
 * A shadow file open for writing: collects the request in its own buffer (held against the mount's
 * write budget) and records it as one annotation at close. Reads show the recorded annotations.
 */
class ShadowHandle implements Handle {
  // Reads show the recorded annotations, not the request written: the page cache would mix them.
  readonly cache = 'direct';
  readonly flushes = true;
  private request = Buffer.alloc(0);
  private size = 0;
  private dirty = false;

  constructor(
    private readonly path: string,
    private readonly view: ShadowsView,
  ) {}

  read(target: Buffer, length: number, position: number): number {
    return copyAt(this.view.render(this.path), target, length, position);
  }

  write(source: Buffer, length: number, position: number): number {
    const end = position + length;
    this.resize(Math.max(end, this.size));
    source.copy(this.request, position, 0, length);
    return length;
  }

  truncate(size: number): void {
    this.resize(size);
  }

  flush(): Result<void> {
    if (!this.dirty) return;
    this.dirty = false;
    return this.view.annotate(this.path, this.request.subarray(0, this.size));
  }

  fsync(): Result<void> {
    return this.flush();
  }

  release(): void {
    this.view.unreserve(this.request.length);
    this.request = Buffer.alloc(0);
    this.size = 0;
  }

  /** Grows (zero-filled, as a hole reads) or cuts the request to `size` bytes; either way a change. */
  private resize(size: number): void {
    const max = this.view.maxRequestBytes;
    if (size > max) throw fsError(E.EFBIG, `file would exceed ${max} bytes`);
    if (size > this.request.length) {
      const capacity = Math.min(Math.max(size, this.request.length * 2, 1024), max);
      this.view.reserve(capacity - this.request.length, this.path);
      const grown = Buffer.alloc(capacity);
      this.request.copy(grown, 0, 0, this.size);
      this.request = grown;
    } else {
      this.request.fill(0, size, this.size);
    }
    this.size = size;
    this.dirty = true;
  }
}
