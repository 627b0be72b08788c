import { ROOT_ID } from './protocol.js';

/** One inode the kernel knows by node id: where it is in the tree, and how often it was looked up. */
export interface Node {
  readonly id: number;
  /** 0 once unlinked or replaced: the kernel may still hold the id, but no path leads to it. */
  parent: number;
  name: string;
  /** Lookups the kernel has not forgotten yet; -1 when unknown (taken over from a predecessor). */
  lookups: number;
  /** Descriptors open on it through this mount (an unlinked open file is hidden, not dropped). */
  open: number;
}

/** Changes to the table, for a successor to rebuild it (custody); written before the reply that shows them. */
export interface NodeJournal {
  added(node: Node): void;
  moved(node: Node): void;
  dropped(id: number): void;
}

const key = (parent: number, name: string): string => `${parent}/${name}`;

/**
 * Node ids to paths. Ids are ours, never reused while the kernel may hold one, and survive a
 * restart of the server through the journal (ADR 0083): a successor answers the same ids.
 */
export class NodeTable {
  private readonly byId = new Map<number, Node>();
  private readonly byName = new Map<string, Node>();
  private next = ROOT_ID + 1;

  constructor(private readonly journal?: NodeJournal) {
    this.byId.set(ROOT_ID, { id: ROOT_ID, parent: 0, name: '', lookups: -1, open: 0 });
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: number): Node | undefined {
    return this.byId.get(id);
  }

  /** The mount-relative path of `id` ("/" for the root), or undefined when none leads there. */
  path(id: number): string | undefined {
    if (id === ROOT_ID) return '/';
    let path = '';
    for (let node = this.byId.get(id); node && node.id !== ROOT_ID; node = this.byId.get(node.parent)) {
      if (node.parent === 0) return undefined;
      path = `/${node.name}${path}`;
    }
    return path || undefined;
  }

  child(parent: number, name: string): Node | undefined {
    return this.byName.get(key(parent, name));
  }

  /** A lookup the kernel will remember: the existing node for the name, or a new id. */
  remember(parent: number, name: string): Node {
    let node = this.byName.get(key(parent, name));
    if (!node) {
      node = { id: this.next, parent, name, lookups: 0, open: 0 };
      // On record before it exists: a journal that failed leaves no id the kernel could learn.
      this.journal?.added(node);
      this.next++;
      this.byId.set(node.id, node);
      this.byName.set(key(parent, name), node);
    }
    if (node.lookups >= 0) node.lookups++;
    return node;
  }

  /** FORGET: the kernel dropped `count` lookups; at none (or unknown), the id is gone for good. */
  forget(id: number, count: number): void {
    const node = this.byId.get(id);
    if (!node || id === ROOT_ID) return;
    if (node.lookups > count) {
      node.lookups -= count;
      return;
    }
    this.byId.delete(id);
    if (node.parent !== 0 && this.byName.get(key(node.parent, node.name)) === node) this.byName.delete(key(node.parent, node.name));
    this.journal?.dropped(id);
  }

  /** rename(2) succeeded: the node keeps its id under its new name; whatever had that name is detached. */
  move(parent: number, name: string, newParent: number, newName: string): void {
    const node = this.byName.get(key(parent, name));
    this.detach(newParent, newName);
    if (!node) return;
    this.byName.delete(key(parent, name));
    node.parent = newParent;
    node.name = newName;
    this.byName.set(key(newParent, newName), node);
    this.journal?.moved(node);
  }

  /** unlink/rmdir succeeded, or a rename replaced it: no path leads to the node any more. */
  detach(parent: number, name: string): void {
    const node = this.byName.get(key(parent, name));
    if (!node) return;
    this.byName.delete(key(parent, name));
    node.parent = 0;
    this.journal?.moved(node);
  }

  /** Rebuilds the table a predecessor journaled; lookups are unknown, so the next FORGET drops a node. */
  restore(nodes: Iterable<{ id: number; parent: number; name: string }>): void {
    for (const { id, parent, name } of nodes) {
      const node: Node = { id, parent, name, lookups: -1, open: 0 };
      this.byId.set(id, node);
      if (parent !== 0) this.byName.set(key(parent, name), node);
      this.next = Math.max(this.next, id + 1);
    }
  }
}
