import type { FuseStat } from '../attributes.js';
import type { ProjectState, ProjectWorkspace } from '@lighthouse-bridge/core';
import { E, fsError } from '../errno.js';
import { BytesHandle, type Handle } from '../handles.js';
import { HISTORY_LOG, type At, type HistoryRef } from '../layout.js';
import { renderLogLine } from '../renderers.js';
import type { Stats } from './stats.js';
import { atHand, openBlob, requireDirectory, requireNode, requireSymlinkTarget, then, type Result, type View } from './view.js';

/** history/ lists this many of the newest @<seq> views; any older one still resolves by name. */
const LISTED_HISTORY_VIEWS = 1000;
const LOG_PAGE = 1000;
/** Instants already resolved to a sequence; cleared past this many. */
const MAX_TIME_VIEWS = 256;

type HistoryAt = At<'historyDir' | 'historyLog' | 'history'>;

/** `history/`: the log as JSON lines, and the tree as of any `@<seq>` or past RFC 3339 instant, read-only. */
export class HistoryView implements View<HistoryAt> {
  private readonly timeViews = new Map<string, number>();

  constructor(
    private readonly workspace: ProjectWorkspace,
    private readonly stats: Stats,
  ) {}

  getattr(at: HistoryAt): Result<FuseStat> {
    switch (at.view) {
      case 'historyDir':
        return this.stats.dir(0o555);
      case 'historyLog':
        return this.stats.file(0o444, 0, Date.now());
      case 'history':
        return then(this.stateFor(at.at), (state) => this.stats.node(requireNode(state, at.path), true));
    }
  }

  /** A listed `@<seq>` (or a name in one) whose view is not restored yet has none: listing history restores nothing. */
  getattrAtHand(at: HistoryAt): FuseStat | undefined {
    if (at.view !== 'history') return atHand(this.getattr(at));
    const seq = 'seq' in at.at ? at.at.seq : this.timeViews.get(at.at.name);
    const state = seq === undefined ? undefined : this.workspace.readyStateAt(seq);
    return state && this.stats.node(requireNode(state, at.path), true);
  }

  readdir(at: HistoryAt): Result<string[]> {
    switch (at.view) {
      case 'historyDir': {
        const head = this.workspace.head;
        const names = [HISTORY_LOG];
        for (let seq = Math.max(1, head - LISTED_HISTORY_VIEWS + 1); seq <= head; seq++) names.push(`@${seq}`);
        return names;
      }
      case 'historyLog':
        throw fsError(E.ENOTDIR, `history/${HISTORY_LOG} is not a directory`);
      case 'history':
        return then(this.stateFor(at.at), (state) => [...requireDirectory(state, at.path).children]);
    }
  }

  readlink(at: HistoryAt): Result<string> {
    if (at.view !== 'history') throw fsError(E.EINVAL, 'only entries of a history view can be symlinks');
    return then(this.stateFor(at.at), (state) => requireSymlinkTarget(state, at.path));
  }

  open(at: HistoryAt): Result<Handle> {
    switch (at.view) {
      case 'historyDir':
        throw fsError(E.EISDIR, 'history is a directory');
      case 'historyLog':
        return this.renderLog().then((data) => new BytesHandle(data, 'direct'));
      case 'history':
        return then(this.stateFor(at.at), (state) => openBlob(this.workspace, requireNode(state, at.path), at.path, 'keep'));
    }
  }

  /**
   * The tree as of `ref`: synchronous once restored (history is immutable; the workspace keeps the
   * recent views), so cached stats and opens skip a promise hop. An instant resolves to its
   * sequence once, then shares that view.
   */
  private stateFor(ref: HistoryRef): Result<ProjectState> {
    if ('name' in ref) {
      const seq = this.timeViews.get(ref.name);
      return seq === undefined ? this.seqAtTime(ref).then((s) => this.stateFor({ seq: s })) : this.stateFor({ seq });
    }
    return this.workspace.readyStateAt(ref.seq) ?? this.workspace.stateAt(ref.seq);
  }

  private async seqAtTime(ref: Extract<HistoryRef, { name: string }>): Promise<number> {
    // An instant not yet past could still gain events, so only past instants are views.
    if (ref.time.getTime() > Date.now()) throw fsError(E.ENOENT, `${ref.name} is in the future`);
    const seq = await this.workspace.seqAt(ref.time);
    if (this.timeViews.size > MAX_TIME_VIEWS) this.timeViews.clear();
    this.timeViews.set(ref.name, seq);
    return seq;
  }

  private async renderLog(): Promise<Buffer> {
    const ws = this.workspace;
    const head = ws.head;
    const parts: Buffer[] = [];
    for (let from = 1; from <= head; ) {
      const page = await ws.store.read(ws.project, { from, to: head, limit: LOG_PAGE });
      if (page.length === 0) break;
      parts.push(Buffer.from(page.map(renderLogLine).join('')));
      from = page[page.length - 1]!.seq + 1;
    }
    return Buffer.concat(parts);
  }
}
