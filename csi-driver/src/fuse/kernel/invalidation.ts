import type { NodeTable } from './nodes.js';
import { ROOT_ID } from './protocol.js';
import { invalAttrNotification } from './wire.js';

/** A path (mount-relative, e.g. `/current/a/b`) that changed without a request of this mount's kernel. */
export interface PathChange {
  path: string;
  /** A directory moved or removed: what the kernel holds beneath it changed too. */
  subtree: boolean;
}

/**
 * What the kernel must forget when a path changed behind its back: the attributes of the node the
 * path leads to, of its directory (mtime, nlink), and for a subtree of every node beneath. Its
 * next stat or open asks again, and a node whose path is gone then answers ENOENT, so a kept
 * entry cannot show a removed or renamed name. Only attributes: forgetting a name takes the
 * directory's lock in the kernel, which a request waiting for this very thread may hold (ADR 0091).
 * Page contents are left to the next open, which decides them (ADR 0080).
 */
export function invalidations(nodes: NodeTable, { path, subtree }: PathChange): Buffer[] {
  const names = path.split('/').slice(1);
  let parent = ROOT_ID;
  for (let i = 0; i < names.length; i++) {
    const node = nodes.child(parent, names[i]!);
    if (!node) return i === names.length - 1 ? [invalAttrNotification(parent)] : [];
    if (i === names.length - 1) {
      const out = [invalAttrNotification(parent), invalAttrNotification(node.id)];
      if (subtree) for (const below of nodes.descendants(node.id)) out.push(invalAttrNotification(below.id));
      return out;
    }
    parent = node.id;
  }
  return [];
}
