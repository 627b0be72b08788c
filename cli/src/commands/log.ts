import { parseArgs } from 'node:util';
import { eventPath, REPLAY_PAGE, type RecordedEvent, type Subscription } from '@lighthouse-bridge/core';
import { parseSeqFlag, positionals, projectArg, runCommand, STORE_FLAGS, STORE_FLAGS_USAGE, withStore, writeOut } from '../args.js';
import { EXIT } from '../command.js';

const USAGE = `usage: lighthouse-bridge log <project> [--from SEQ] [--follow] [--json] [--store URL]
Prints the event log from SEQ (default 1): "seq time actor type path" per line, or with --json one
object per line {seq, type, time, actor, path, data}. --follow keeps printing new events until
interrupted (SIGINT/SIGTERM).
${STORE_FLAGS_USAGE}`;

export function run(argv: string[]): Promise<number> {
  return runCommand('log', USAGE, async () => {
    const { values, positionals: args } = parseArgs({
      args: argv,
      options: { ...STORE_FLAGS, from: { type: 'string' }, follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = ''] = positionals(args, ['<project>']);
    const project = projectArg(projectText);
    const from = values.from === undefined ? 1 : Math.max(1, parseSeqFlag(values.from, '--from'));
    const format = values.json ? formatJson : formatText;
    return withStore(values.store, true, async (store) => {
      let last = from - 1;
      for (;;) {
        const page = await store.read(project, { from: last + 1, limit: REPLAY_PAGE });
        if (page.length === 0) break;
        await writeOut(page.map(format).join(''));
        last = page[page.length - 1]?.seq ?? last;
      }
      if (!values.follow) return EXIT.ok;
      await follow((onEvents, onError) => store.subscribe(project, last, onEvents, onError), format);
      return EXIT.ok;
    });
  });
}

type Subscribe = (onEvents: (events: RecordedEvent[]) => void, onError: (error: Error) => void) => Subscription;

/** Prints events as they arrive until a signal, a closed stdout (e.g. piped into `head`) or a tail error. */
async function follow(subscribe: Subscribe, format: (e: RecordedEvent) => string): Promise<void> {
  let failure: Error | undefined;
  let stop = (): void => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const subscription = subscribe(
    (events) => {
      process.stdout.write(events.map(format).join(''));
    },
    (error) => {
      failure = error;
      stop();
    },
  );
  // Stores' tails may use unref'd timers and watchers; following is this process's whole job.
  const keepAlive = setInterval(() => {}, 1 << 30);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stdout.once('error', stop);
  try {
    await stopped;
  } finally {
    clearInterval(keepAlive);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.stdout.off('error', stop);
    await subscription.close();
  }
  if (failure) throw failure;
}

function formatText(e: RecordedEvent): string {
  const what = e.type === 'PathMoved' ? `${e.data.from} -> ${e.data.to}` : (eventPath(e) ?? '');
  return `${e.seq}\t${e.time}\t${e.actor}\t${e.type}\t${what}\n`;
}

function formatJson(e: RecordedEvent): string {
  const path = eventPath(e);
  return `${JSON.stringify({ seq: e.seq, type: e.type, time: e.time, actor: e.actor, ...(path === undefined ? {} : { path }), data: e.data })}\n`;
}
