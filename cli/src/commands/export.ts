import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { exportProject, formatProjectId } from '@lighthouse-bridge/core';
import { endProgress, progressLine } from '../archiveProgress.js';
import { PARTIAL_SUFFIX, parseSeqFlag, positionals, projectArg, runCommand, STORE_FLAGS_USAGE, withStore, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

const USAGE = `usage: lighthouse-bridge export <project> [--to FILE] [--from SEQ] [--to-seq SEQ] [--store URL]
Writes a versioned, checksummed archive of the project's events SEQ..SEQ and the blobs they name
(docs/adr/0011-project-archive-format.md) to FILE, or to stdout. The archive ends at the head as it
is when the export starts, so exporting a project in use gives a consistent prefix of its log.
FILE appears only once the archive is complete. Progress goes to stderr when it is a terminal.
  --to FILE      where to write (default: stdout, which must not be a terminal)
  --from SEQ     first event (default 1); an archive from SEQ > 1 is imported with --append
  --to-seq SEQ   last event (default: the head)
${STORE_FLAGS_USAGE}`;

export function run(argv: string[]): Promise<number> {
  return runCommand('export', USAGE, async () => {
    const { values, positionals: args } = parseArgs({
      args: argv,
      options: { store: { type: 'string' }, help: { type: 'boolean', short: 'h' }, to: { type: 'string' }, from: { type: 'string' }, 'to-seq': { type: 'string' } },
      allowPositionals: true,
    });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = ''] = positionals(args, ['<project>']);
    const project = projectArg(projectText);
    const fromSeq = values.from === undefined ? undefined : parseSeqFlag(values.from, '--from');
    const toSeq = values['to-seq'] === undefined ? undefined : parseSeqFlag(values['to-seq'], '--to-seq');
    if (fromSeq === 0) throw new UsageError('--from counts from 1');
    if (fromSeq !== undefined && toSeq !== undefined && fromSeq > toSeq + 1) throw new UsageError(`--from ${fromSeq} is past --to-seq ${toSeq}`);
    const file = values.to;
    if (file === undefined && process.stdout.isTTY) throw new UsageError('refusing to write an archive to a terminal: use --to FILE or redirect stdout');
    const onProgress = progressLine('exporting');
    const options = { ...(fromSeq === undefined ? {} : { fromSeq }), ...(toSeq === undefined ? {} : { toSeq }), ...(onProgress ? { onProgress } : {}) };

    // Read-only: a mount may hold the embedded store's writer lock, and an export never writes.
    return withStore(values.store, true, async (store) => {
      if (file === undefined) {
        await exportProject(store, project, process.stdout, options);
        endProgress();
        return EXIT.ok;
      }
      const partial = `${file}${PARTIAL_SUFFIX}`;
      const out = createWriteStream(partial, { flags: 'w' });
      try {
        const result = await exportProject(store, project, out, options);
        out.end();
        await finished(out);
        await rename(partial, file);
        endProgress();
        await writeOut(`exported ${formatProjectId(project)} events ${result.events === 0 ? 'none' : `${result.head - result.events + 1}-${result.head}`} and ${result.blobs} blobs (${result.bytes} bytes) to ${file}\n`);
        return EXIT.ok;
      } catch (error) {
        out.destroy();
        await rm(partial, { force: true });
        throw error;
      }
    });
  });
}
