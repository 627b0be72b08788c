import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { formatProjectId, importProject } from '@lighthouse-bridge/core';
import { endProgress, progressLine } from '../archiveProgress.js';
import { positionals, projectArg, runCommand, STORE_FLAGS_USAGE, withStore, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

const USAGE = `usage: lighthouse-bridge import <project> --from FILE [--append] [--store URL]
Imports an archive made by 'lighthouse-bridge export' into the project, keeping every event's
sequence number and time. Nothing is written until the whole archive has been read and checked
(checksums, sequence, blobs, tree hashes); a truncated or tampered archive is refused (exit 1)
and leaves the project untouched. After the import the project is replayed and checked.
  --from FILE    the archive; - reads stdin
  --append       import into a non-empty project: the archive must start at the event after its head
${STORE_FLAGS_USAGE}`;

export function run(argv: string[]): Promise<number> {
  return runCommand('import', USAGE, async () => {
    const { values, positionals: args } = parseArgs({
      args: argv,
      options: { store: { type: 'string' }, help: { type: 'boolean', short: 'h' }, from: { type: 'string' }, append: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = ''] = positionals(args, ['<project>']);
    const project = projectArg(projectText);
    if (values.from === undefined) throw new UsageError('missing --from FILE (- for stdin)');
    const file = values.from;
    const input =
      file === '-'
        ? process.stdin
        : createReadStream('', {
            fd: await open(file, 'r').catch((error: Error) => {
              throw new UsageError(`cannot read ${file}: ${error.message}`);
            }),
          });
    const onProgress = progressLine('importing');
    try {
      return await withStore(values.store, false, async (store) => {
        const result = await importProject(store, project, input, { append: values.append ?? false, ...(onProgress ? { onProgress } : {}) });
        endProgress();
        await writeOut(`imported ${result.events} events and ${result.blobs} blobs into ${formatProjectId(project)}; its head is event ${result.head}\n`);
        return EXIT.ok;
      });
    } finally {
      if (input !== process.stdin) input.destroy();
    }
  });
}
