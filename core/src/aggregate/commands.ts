import type { EpochMs } from '../events/events.js';

/**
 * What a caller asks of the project. `decide` turns a command into events or a `DomainError`.
 * Content is stored as a blob before the command is issued; commands carry its hash and size.
 */
export type Command =
  | { type: 'WriteFile'; path: string; hash: string; size: number; mode?: number; mtimeMs?: EpochMs }
  | { type: 'CreateSymlink'; path: string; target: string }
  | { type: 'Delete'; path: string }
  | { type: 'Move'; from: string; to: string }
  | { type: 'MakeDirectory'; path: string; mode?: number }
  | { type: 'RemoveDirectory'; path: string }
  | { type: 'ChangeAttributes'; path: string; mode?: number; mtimeMs?: EpochMs }
  | { type: 'Annotate'; path: string; text: string; line?: number; tags?: string[] }
  | { type: 'CreateContextPackage'; name: string; paths: string[]; description?: string; to?: string }
  | { type: 'StartAgentSession'; sessionId: string; agent: string; node?: string }
  | { type: 'EndAgentSession'; sessionId: string }
  | { type: 'RequestValidation'; requestId: string; agent: string; tool: string; input: unknown; deadlineMs: EpochMs }
  | { type: 'DecideValidation'; requestId: string; decision: 'allow' | 'deny'; reason: string };

/**
 * Why a command was refused. `code` is an errno name so the FUSE edge maps it directly; the CLI
 * maps every code to exit status 1 and prints the message.
 */
export type DomainErrorCode =
  | 'EINVAL' // bad path or argument
  | 'ENAMETOOLONG'
  | 'ENOENT'
  | 'EEXIST'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'ENOTEMPTY'
  | 'EFBIG' // file over the per-file limit
  | 'ENOSPC' // project over its byte or file-count limit
  | 'EBUSY'; // version conflict that did not resolve after retries

export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly code: DomainErrorCode,
    message: string,
  ) {
    super(message);
  }
}
