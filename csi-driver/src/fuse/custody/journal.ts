import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { Node } from '../kernel/nodes.js';
import type { SessionJournal } from '../kernel/session.js';

export interface JournaledNode {
  id: number;
  /** 0: no path leads to it any more (unlinked or replaced), but the kernel may still hold the id. */
  parent: number;
  name: string;
}

export interface JournaledHandle {
  fh: number;
  nodeId: number;
  flags: number;
  mirror: string | undefined;
}

export interface JournalState {
  nodes: Map<number, JournaledNode>;
  handles: Map<number, JournaledHandle>;
}

/** Appends past this many records beyond the live ones rewrite the file from the live state. */
const COMPACT_SLACK = 20_000;

/**
 * The session's node ids and descriptors in a file a successor reads (ADR 0083): one line per
 * change, appended with a write(2) before the reply that shows the change leaves, so whatever the
 * kernel may hold is on record when the process dies. A write(2) survives the process (not the
 * node), which is all custody needs. Lines: `n ID PARENT NAME` (new or moved; NAME is JSON),
 * `x ID` (forgotten), `h FH NODE FLAGS MIRROR` (opened; MIRROR is JSON or null), `c FH` (released).
 */
export class JournalFile implements SessionJournal {
  private fd: number;
  private size: number;
  private appended = 0;

  private constructor(
    private readonly path: string,
    private readonly state: JournalState,
  ) {
    this.fd = JournalFile.write(path, state);
    this.size = fstatSync(this.fd).size;
  }

  /** A journal starting empty (a new mount). */
  static create(path: string): JournalFile {
    return new JournalFile(path, { nodes: new Map(), handles: new Map() });
  }

  /** The predecessor's state (and how many damaged lines were skipped), and a compacted journal continuing from it. */
  static resume(path: string): { journal: JournalFile; state: JournalState; skipped: number } {
    const { skipped, ...state } = readJournal(path);
    return { journal: new JournalFile(path, state), state, skipped };
  }

  added(node: Node): void {
    this.moved(node);
  }

  moved(node: Node): void {
    this.state.nodes.set(node.id, { id: node.id, parent: node.parent, name: node.name });
    this.append(`n ${node.id} ${node.parent} ${JSON.stringify(node.name)}\n`);
  }

  dropped(id: number): void {
    this.state.nodes.delete(id);
    this.append(`x ${id}\n`);
  }

  opened(fh: number, nodeId: number, flags: number, mirror: string | undefined): void {
    this.state.handles.set(fh, { fh, nodeId, flags, mirror });
    this.append(`h ${fh} ${nodeId} ${flags} ${JSON.stringify(mirror ?? null)}\n`);
  }

  closed(fh: number): void {
    this.state.handles.delete(fh);
    this.append(`c ${fh}\n`);
  }

  close(): void {
    closeSync(this.fd);
  }

  /** One whole line or none: a short write (disk full) is cut back off, and the caller fails. */
  private append(line: string): void {
    const bytes = Buffer.from(line);
    let written = 0;
    try {
      written = writeSync(this.fd, bytes);
    } finally {
      if (written !== bytes.length) ftruncateSync(this.fd, this.size);
    }
    if (written !== bytes.length) throw new Error(`custody journal ${this.path}: short write (${written} of ${bytes.length} bytes; disk full?)`);
    this.size += written;
    if (++this.appended > COMPACT_SLACK + this.state.nodes.size + this.state.handles.size) this.compact();
  }

  /** The live state in a new file, swapped in only once it is complete; on failure the old one goes on. */
  private compact(): void {
    let fd: number;
    try {
      fd = JournalFile.write(this.path, this.state);
    } catch {
      this.appended = 0; // try again after as many appends; the old file is still whole
      return;
    }
    closeSync(this.fd);
    this.fd = fd;
    this.size = fstatSync(fd).size;
    this.appended = 0;
  }

  /** Writes the live state to a new file, renames it into place and returns it open for appends. */
  private static write(path: string, state: JournalState): number {
    const lines: string[] = [];
    for (const n of state.nodes.values()) lines.push(`n ${n.id} ${n.parent} ${JSON.stringify(n.name)}\n`);
    for (const h of state.handles.values()) lines.push(`h ${h.fh} ${h.nodeId} ${h.flags} ${JSON.stringify(h.mirror ?? null)}\n`);
    const temporary = `${path}.new`;
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, lines.join(''));
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    return openSync(path, 'a');
  }
}

/**
 * Replays a journal. A torn last line (the process died mid-write) is one whose reply never left; a
 * line that does not parse anywhere else (damage we did not write) is skipped and counted, so one
 * bad line costs what it described, not the whole takeover.
 */
export function readJournal(path: string): JournalState & { skipped: number } {
  const state = { nodes: new Map<number, JournaledNode>(), handles: new Map<number, JournaledHandle>(), skipped: 0 };
  if (!existsSync(path)) return state;
  const text = readFileSync(path, 'utf8');
  const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
  for (const line of complete.split('\n')) {
    if (line === '') continue;
    try {
      apply(state, line);
    } catch {
      state.skipped++;
    }
  }
  return state;
}

const INTEGER = /^\d{1,16}$/;

function integer(text: string | undefined): number {
  if (text === undefined || !INTEGER.test(text)) throw new SyntaxError(`not a journal number: ${text}`);
  return Number(text);
}

function apply(state: JournalState, line: string): void {
  const [kind, a, b, ...rest] = line.split(' ');
  if (kind === 'n') {
    const name: unknown = JSON.parse(rest.join(' '));
    if (typeof name !== 'string') throw new SyntaxError('a node name must be a string');
    state.nodes.set(integer(a), { id: integer(a), parent: integer(b), name });
  } else if (kind === 'x') state.nodes.delete(integer(a));
  else if (kind === 'h') {
    const [flags, ...mirrorJson] = rest;
    const mirror: unknown = JSON.parse(mirrorJson.join(' '));
    if (mirror !== null && typeof mirror !== 'string') throw new SyntaxError('a mirror must be a name or null');
    state.handles.set(integer(a), { fh: integer(a), nodeId: integer(b), flags: integer(flags), mirror: mirror ?? undefined });
  } else if (kind === 'c') state.handles.delete(integer(a));
  else throw new SyntaxError(`unknown journal line ${kind}`);
}
