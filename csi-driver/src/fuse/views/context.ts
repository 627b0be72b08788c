import type { FuseStat } from '../attributes.js';
import type { ProjectWorkspace } from '@lighthouse-bridge/core';
import { E, fsError } from '../errno.js';
import { BytesHandle, type Handle } from '../handles.js';
import type { At } from '../layout.js';
import { renderJson } from '../renderers.js';
import type { Stats } from './stats.js';
import type { Result, View } from './view.js';

const MANIFEST = 'manifest.json';

type Entry =
  | { kind: 'dir'; names: string[] }
  | { kind: 'manifest'; manifest: unknown }
  | { kind: 'file'; hash: string; size: number; time: string };

/** `context/<package>/`: the context packages recorded in the project, each with its manifest, read-only. */
export class ContextView implements View<At<'context'>> {
  constructor(
    private readonly workspace: ProjectWorkspace,
    private readonly stats: Stats,
  ) {}

  getattr({ path }: At<'context'>): FuseStat {
    const entry = this.entry(path);
    if (entry.kind === 'dir') return this.stats.dir(0o555);
    if (entry.kind === 'manifest') return this.stats.file(0o444, renderJson(entry.manifest).length);
    const ms = Date.parse(entry.time);
    return this.stats.file(0o444, entry.size, ms, ms);
  }

  readdir({ path }: At<'context'>): string[] {
    const entry = this.entry(path);
    if (entry.kind !== 'dir') throw fsError(E.ENOTDIR, `context/${path} is not a directory`);
    return entry.names;
  }

  open({ path }: At<'context'>): Result<Handle> {
    const entry = this.entry(path);
    if (entry.kind === 'manifest') return new BytesHandle(renderJson(entry.manifest), 'page');
    if (entry.kind === 'file') return this.workspace.readBlob(entry.hash).then((data) => new BytesHandle(data, 'page'));
    throw fsError(E.EISDIR, `context/${path} is a directory`);
  }

  private entry(rel: string): Entry {
    const packages = this.workspace.state.contextPackages;
    if (rel === '') return { kind: 'dir', names: [...packages.keys()] };
    const slash = rel.indexOf('/');
    const name = slash < 0 ? rel : rel.slice(0, slash);
    const inner = slash < 0 ? '' : rel.slice(slash + 1);
    const pkg = packages.get(name);
    if (!pkg) throw fsError(E.ENOENT, `context/${rel} does not exist`);
    if (inner === MANIFEST) return { kind: 'manifest', manifest: pkg };
    const names = new Set<string>(inner === '' ? [MANIFEST] : []);
    const prefix = inner === '' ? '' : `${inner}/`;
    for (const file of pkg.files) {
      if (file.path === inner) return { kind: 'file', hash: file.hash, size: file.size, time: pkg.time };
      if (file.path.startsWith(prefix)) names.add(file.path.slice(prefix.length).split('/', 1)[0]!);
    }
    if (names.size === 0) throw fsError(E.ENOENT, `context/${rel} does not exist`);
    return { kind: 'dir', names: [...names] };
  }
}
