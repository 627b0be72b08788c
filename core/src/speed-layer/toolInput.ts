import { posix } from 'node:path';

/**
 * Where the facts rules look at live in a tool's input. Agents' tools name them differently
 * (`path`, `file_path`, `notebook_path`; `content`, `new_string`, MultiEdit's `edits`), so every
 * rule sees all of them rather than the one field a rule author thought of.
 */
export function commandOf(input: Record<string, unknown>): string | undefined {
  const c = input['command'] ?? input['cmd'];
  if (typeof c === 'string') return c;
  if (Array.isArray(c) && c.every((p) => typeof p === 'string')) return c.join(' ');
  return undefined;
}

export function pathsOf(input: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const key of ['path', 'file_path', 'notebook_path', 'filePath']) {
    const v = input[key];
    if (typeof v === 'string') out.push(v);
  }
  const many = input['paths'];
  if (Array.isArray(many)) for (const p of many) if (typeof p === 'string') out.push(p);
  return out;
}

export function contentsOf(input: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const key of ['content', 'new_string', 'new_source']) {
    const v = input[key];
    if (typeof v === 'string') out.push(v);
  }
  const edits = input['edits'];
  if (Array.isArray(edits)) {
    for (const e of edits) {
      const v = typeof e === 'object' && e !== null ? (e as Record<string, unknown>)['new_string'] : undefined;
      if (typeof v === 'string') out.push(v);
    }
  }
  return out;
}

const WRITE_TOOLS = /^(write|edit|multiedit|notebookedit|create|str_replace|apply_patch|delete|move|rename)$/i;
/** Tools that only read; the built-in rule allows them, and the risk scorer too when that rule is replaced. */
export const READ_ONLY_TOOLS = /^(read|grep|glob|ls|notebookread|todoread)$/i;

/** A tool call that changes files: a known write tool, or any input carrying content to write (`contentsOf` its input). */
export function isFileWrite(tool: string, contents: string[]): boolean {
  return WRITE_TOOLS.test(tool) || contents.length > 0;
}

/**
 * Whether `path` stays inside the project: relative paths are taken from the project root and
 * must not climb out of it; absolute ones must lie under `root` (none configured: no absolute path
 * is known to be inside).
 */
export function insideRoot(path: string, root: string | undefined): boolean {
  if (path.includes('\0')) return false;
  if (path.startsWith('/')) {
    if (root === undefined) return false;
    const p = posix.normalize(path);
    const r = posix.normalize(root).replace(/\/+$/, '');
    return r === '' ? true : p === r || p.startsWith(`${r}/`);
  }
  if (path.startsWith('~')) return false;
  const p = posix.normalize(path);
  return p !== '..' && !p.startsWith('../');
}
