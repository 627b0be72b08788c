import { parseArgs } from 'node:util';
import { parseStoreUrl, storeUrlFrom } from '@lighthouse-bridge/core';
import { repairEmbeddedProject } from '@lighthouse-bridge/core/store';
import { positionals, projectArg, runCommand, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

const USAGE = `usage: lighthouse-bridge repair <project> [--store URL]
Cuts a damaged end off the project's log in an embedded (file://) store, which the store refuses to
read or write past and names this command for. The cut bytes are kept under
<store>/<namespace>/<name>/cut/ and the sequence numbers they held are recorded as lost (EventLost
events), so no number is ever given to two events. Prints what was cut, or "nothing to repair".
Stop the project's mounts first: the repair takes the writer lock.
  --store URL    file://DIR (default: $LHB_STORE, else file://./.lighthouse-bridge)`;

export function run(argv: string[]): Promise<number> {
  return runCommand('repair', USAGE, async () => {
    const { values, positionals: args } = parseArgs({
      args: argv,
      options: { store: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = ''] = positionals(args, ['<project>']);
    const project = projectArg(projectText);
    const url = parseStoreUrl(storeUrlFrom(values.store));
    if (url.kind !== 'embedded') throw new UsageError('repair works on embedded (file://) stores; a Redis store keeps its log in Redis');
    const report = await repairEmbeddedProject(url.dir, project);
    if (!report) return writeOut('nothing to repair\n').then(() => EXIT.ok);
    const { first, last } = report.lostSeqs;
    await writeOut(
      `cut ${report.bytes} bytes at offset ${report.offset} of ${report.file} (${report.reason}); ` +
        `seqs ${first === last ? first : `${first}-${last}`} recorded as lost; the cut bytes are in ${report.savedAs}\n`,
    );
    return EXIT.ok;
  });
}
