import { DomainError, joinPath, type ProjectWorkspace } from '@lighthouse-bridge/core';

/**
 * `mkdir -p` in the project: makes `path` and each missing directory above it, in order. One that
 * another writer made between our look and our append (the retry saw it) is fine, as for mkdir -p;
 * a file where a directory goes is refused (EEXIST or ENOTDIR, from decide).
 */
export async function makeDirectories(workspace: ProjectWorkspace, path: string): Promise<void> {
  let dir = '';
  for (const part of path.split('/').filter((p) => p !== '')) {
    dir = joinPath(dir, part);
    if (workspace.lookup(dir)?.kind === 'directory') continue;
    try {
      await workspace.execute({ type: 'MakeDirectory', path: dir });
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'EEXIST' && workspace.lookup(dir)?.kind === 'directory')) throw error;
    }
  }
}
