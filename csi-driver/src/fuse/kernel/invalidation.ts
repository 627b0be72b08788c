import type { NodeTable } from './nodes.js';
import { ROOT_ID } from './protocol.js';
import { invalAttrNotification, invalEntryNotification } from './wire.js';

/**
 * What the kernel must forget when `path` (mount-relative, e.g. `/current/a/b`) changed without a
 * request of its own: the name in its directory (a cached entry, or a cached "does not exist"),
 * the directory's attributes (mtime, nlink), and the attributes of the node the name led to. Only
 * names under directories the kernel knows can be cached; below the first name it does not know,
 * nothing can be. Page contents are not dropped here: an open of `current/` decides that (ADR 0080).
 */
export function invalidations(nodes: NodeTable, path: string): Buffer[] {
  const names = path.split('/').slice(1);
  let parent = ROOT_ID;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const node = nodes.child(parent, name);
    if (!node || i === names.length - 1) {
      const out = [invalEntryNotification(parent, name), invalAttrNotification(parent)];
      if (node) out.push(invalAttrNotification(node.id));
      return out;
    }
    parent = node.id;
  }
  return [];
}
