import { createHash } from 'node:crypto';
import type { ProjectState } from '../aggregate/state.js';

/**
 * One sha256 for the file tree as of a state: every path in code-unit order with what a reader of
 * the mount sees of it (kind, content hash or link target, size, mode, mtime and ctime). ctime is
 * the store time of the event that last touched the node, so two logs with equal tree hashes also
 * agree on the times their history is browsed by.
 */
export function treeHash(state: ProjectState): string {
  const hash = createHash('sha256');
  for (const path of [...state.nodes.keys()].sort()) {
    const node = state.nodes.get(path)!;
    const fields =
      node.kind === 'file'
        ? [path, 'f', node.hash, node.size, node.mode, node.mtimeMs, node.ctimeMs]
        : node.kind === 'symlink'
          ? [path, 'l', node.target, node.mtimeMs, node.ctimeMs]
          : [path, 'd', node.mode, node.mtimeMs, node.ctimeMs];
    hash.update(`${JSON.stringify(fields)}\n`);
  }
  return hash.digest('hex');
}
