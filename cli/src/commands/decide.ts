import { parseArgs } from 'node:util';
import { ConcurrencyError, type EventStore, type ProjectId, type RecordedEvent } from '@lighthouse-bridge/core';
import { actorFrom, positionals, projectArg, runCommand, withStore, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

const USAGE = `usage: lighthouse-bridge decide <project> <requestId> allow|deny [--reason TEXT] [--store URL] [--actor NAME]
Answers an escalated validation request as the expert: appends ValidationDecided to the project's
log, where the waiting validator reads it. Refuses (exit 1) a request that is unknown, already
decided, or past its deadline.
  --store URL    file://DIR, redis://HOST:PORT[/DB], redis+cluster://H:P,... (default: $LHB_STORE,
                 else file://./.lighthouse-bridge). A validator waiting on an embedded store holds
                 its writer lock, so answering from another process needs a Redis store.`;

const PAGE = 1000;

/** The request cannot be decided (unknown, decided, expired); the command exits 1 with the reason. */
class DecisionRefused extends Error {
  override readonly name = 'DecisionRefused';
}
const ATTEMPTS = 5;

export function run(argv: string[]): Promise<number> {
  return runCommand('decide', USAGE, async () => {
    const { values, positionals: args } = parseArgs({
      args: argv,
      options: { reason: { type: 'string' }, store: { type: 'string' }, actor: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
    if (values.help) {
      await writeOut(`${USAGE}\n`);
      return EXIT.ok;
    }
    const [projectText = '', requestId = '', decision = ''] = positionals(args, ['<project>', '<requestId>', 'allow|deny']);
    const project = projectArg(projectText);
    if (decision !== 'allow' && decision !== 'deny') throw new UsageError(`the decision must be "allow" or "deny", not "${decision}"`);
    if (requestId === '') throw new UsageError('the requestId is empty');
    const by = actorFrom(values.actor);
    const reason = values.reason ?? `${decision === 'allow' ? 'allowed' : 'denied'} by ${by}`;

    return withStore(values.store, false, async (store) => {
      const recorded = await decideOnce(store, project, requestId, { requestId, decision, reason, by });
      await writeOut(`${JSON.stringify({ seq: recorded.seq, requestId, decision, reason, by })}\n`);
      return EXIT.ok;
    });
  });
}

interface Found {
  requested: Extract<RecordedEvent, { type: 'ValidationRequested' }> | undefined;
  decided: Extract<RecordedEvent, { type: 'ValidationDecided' }> | undefined;
}

/**
 * Appends the decision only if the log, as of the head just read, holds the request and no decision
 * for it; a concurrent append makes it look again at what was added. Even if two answers did land,
 * validators take the first in log order, so this check is for the expert's sake: to be told.
 */
async function decideOnce(store: EventStore, project: ProjectId, requestId: string, data: { requestId: string; decision: 'allow' | 'deny'; reason: string; by: string }): Promise<RecordedEvent> {
  const found: Found = { requested: undefined, decided: undefined };
  let scanned = 0;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const head = await store.head(project);
    scanned = await scan(store, project, requestId, scanned, head, found);
    if (found.requested === undefined) throw new DecisionRefused(`no validation request ${requestId} in project ${project.namespace}/${project.name}`);
    if (found.decided !== undefined) {
      const d = found.decided.data;
      throw new DecisionRefused(`request ${requestId} was already decided: ${d.decision} by ${d.by} (event ${found.decided.seq})`);
    }
    if (found.requested.data.deadlineMs < Date.now()) {
      throw new DecisionRefused(`request ${requestId} passed its deadline at ${new Date(found.requested.data.deadlineMs).toISOString()}`);
    }
    try {
      const [event] = await store.append(project, [{ type: 'ValidationDecided', actor: data.by, data }], { expectedVersion: head });
      if (event !== undefined) return event;
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
    }
  }
  throw new ConcurrencyError(scanned, await store.head(project));
}

/** Reads events `after < seq <= head`, noting the request and its first decision; returns `head`. */
async function scan(store: EventStore, project: ProjectId, requestId: string, after: number, head: number, found: Found): Promise<number> {
  for (let from = after + 1; from <= head; ) {
    const page = await store.read(project, { from, to: head, limit: PAGE });
    if (page.length === 0) break;
    for (const e of page) {
      if (e.type === 'ValidationRequested' && e.data.requestId === requestId) found.requested ??= e;
      if (e.type === 'ValidationDecided' && e.data.requestId === requestId) found.decided ??= e;
    }
    from = (page[page.length - 1]?.seq ?? head) + 1;
  }
  return head;
}
