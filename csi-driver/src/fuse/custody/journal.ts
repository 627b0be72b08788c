import { closeSync, existsSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
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
  private appended = 0;

  private constructor(
    private readonly path: string,
    private readonly state: JournalState,
  ) {
    this.fd = JournalFile.write(path, state);
  }

  /** A journal starting empty (a new mount). */
  static create(path: string): JournalFile {
    return new JournalFile(path, { nodes: new Map(), handles: new Map() });
  }

  /** The predecessor's state, and a compacted journal continuing from it. */
  static resume(path: string): { journal: JournalFile; state: JournalState } {
    const state = readJournal(path);
    return { journal: new JournalFile(path, state), state };
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

  private append(line: string): void {
    writeSync(this.fd, line);
    if (++this.appended > COMPACT_SLACK + this.state.nodes.size + this.state.handles.size) {
      closeSync(this.fd);
      this.fd = JournalFile.write(this.path, this.state);
      this.appended = 0;
    }
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

/** Replays a journal; a torn last line (the process died mid-write) is one whose reply never left. */
export function readJournal(path: string): JournalState {
  const state: JournalState = { nodes: new Map(), handles: new Map() };
  if (!existsSync(path)) return state;
  const text = readFileSync(path, 'utf8');
  const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
  for (const line of complete.split('\n')) {
    const [kind, a = '', b = '', ...rest] = line.split(' ');
    const c = rest.join(' ');
    if (kind === 'n') state.nodes.set(Number(a), { id: Number(a), parent: Number(b), name: JSON.parse(c) as string });
    else if (kind === 'x') state.nodes.delete(Number(a));
    else if (kind === 'h') {
      const [flags = '0', ...mirror] = rest;
      state.handles.set(Number(a), { fh: Number(a), nodeId: Number(b), flags: Number(flags), mirror: (JSON.parse(mirror.join(' ')) as string | null) ?? undefined });
    } else if (kind === 'c') state.handles.delete(Number(a));
  }
  return state;
}
