import type { DirectoryNode, ProjectState } from './state.js';

export const DEFAULT_DIRECTORY_MODE = 0o755;
export const DEFAULT_FILE_MODE = 0o644;

/** A project before its first event: an empty root directory. */
export function initialState(): ProjectState {
  const root: DirectoryNode = { kind: 'directory', mode: DEFAULT_DIRECTORY_MODE, mtimeMs: 0, ctimeMs: 0, children: new Set() };
  return {
    seq: 0,
    time: '',
    nodes: new Map([['', root]]),
    totalBytes: 0,
    fileCount: 0,
    annotations: new Map(),
    contextPackages: new Map(),
    sessions: new Map(),
    pendingValidations: new Map(),
  };
}
