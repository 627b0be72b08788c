import type { FuseStat } from '../attributes.js';
import type { ContextPackage, ProjectWorkspace } from '@lighthouse-bridge/core';
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
    const index = indexOf(pkg);
    const file = index.files.get(inner);
    if (file) return { kind: 'file', hash: file.hash, size: file.size, time: pkg.time };
    const names = index.dirs.get(inner);
    if (!names) throw fsError(E.ENOENT, `context/${rel} does not exist`);
    return { kind: 'dir', names };
  }
}

interface PackageIndex {
  files: Map<string, ContextPackage['files'][number]>;
  /** Each directory of the package ('' its top) and the names in it. */
  dirs: Map<string, string[]>;
}

/** Packages never change once recorded: each is indexed once, so a stat of one of its names is not a scan of all. */
const indexes = new WeakMap<ContextPackage, PackageIndex>();

function indexOf(pkg: ContextPackage): PackageIndex {
  let index = indexes.get(pkg);
  if (index) return index;
  const files = new Map<string, ContextPackage['files'][number]>();
  const dirs = new Map<string, Set<string>>([['', new Set([MANIFEST])]]);
  for (const file of pkg.files) {
    files.set(file.path, file);
    const parts = file.path.split('/');
    for (let depth = 0; depth < parts.length; depth++) {
      const dir = parts.slice(0, depth).join('/');
      let names = dirs.get(dir);
      if (!names) dirs.set(dir, (names = new Set()));
      names.add(parts[depth]!);
    }
  }
  index = { files, dirs: new Map([...dirs].map(([dir, names]) => [dir, [...names]])) };
  indexes.set(pkg, index);
  return index;
}
