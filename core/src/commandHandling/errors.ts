/** A FileWritten event names content the store does not have: a broken store, so EIO at the FUSE edge. */
export class BlobNotFoundError extends Error {
  override readonly name = 'BlobNotFoundError';
  constructor(readonly hash: string) {
    super(`blob ${hash} is missing from the store`);
  }
}

/** The workspace was closed; no further commands are accepted. */
export class WorkspaceClosedError extends Error {
  override readonly name = 'WorkspaceClosedError';
}
