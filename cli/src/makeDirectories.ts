import { DomainError, joinPath, parentOf, type ProjectWorkspace } from '@lighthouse-bridge/core';

/**
 * Each missing directory above `path` (put's missing parents). An entry already there, of any
 * kind, is left for the caller's next step: a file where a directory goes is refused there
 * (ENOTDIR), as path resolution does.
 */
export async function makeParents(workspace: ProjectWorkspace, path: string): Promise<void> {
  let dir = '';
  for (const part of (parentOf(path) ?? '').split('/').filter((p) => p !== '')) {
    dir = joinPath(dir, part);
    if (workspace.lookup(dir) === undefined) await makeDirectory(workspace, dir);
  }
}

/** `mkdir -p`: `path` and its missing parents; an existing directory is not an error, a file is (EEXIST). */
export async function makeDirectories(workspace: ProjectWorkspace, path: string): Promise<void> {
  await makeParents(workspace, path);
  if (workspace.lookup(path)?.kind !== 'directory') await makeDirectory(workspace, path);
}

/** One that another writer made between our look and our append (the retry saw it) counts as made, as for mkdir -p. */
async function makeDirectory(workspace: ProjectWorkspace, dir: string): Promise<void> {
  try {
    await workspace.execute({ type: 'MakeDirectory', path: dir });
  } catch (error) {
    if (!(error instanceof DomainError && error.code === 'EEXIST' && workspace.lookup(dir)?.kind === 'directory')) throw error;
  }
}
