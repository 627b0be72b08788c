import { parseArgs } from 'node:util';
import { positionals, projectArg, runCommand, STORE_FLAGS, STORE_FLAGS_USAGE, withWorkspace, writeOut } from '../args.js';
import { EXIT } from '../command.js';

const USAGE = `usage: lighthouse-bridge mv <project> <from> <to> [--store URL] [--actor NAME]
Renames a file or a whole directory, as rename(2): replaces a file or an empty directory at <to>.
${STORE_FLAGS_USAGE}`;

export function run(argv: string[]): Promise<number> {
  return runCommand('mv', USAGE, async () => {
    const { values, positionals: args } = parseArgs({ args: argv, options: STORE_FLAGS, allowPositionals: true });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = '', from = '', to = ''] = positionals(args, ['<project>', '<from>', '<to>']);
    const project = projectArg(projectText);
    return withWorkspace(values, project, async (workspace) => {
      await workspace.execute({ type: 'Move', from, to });
      return EXIT.ok;
    });
  });
}
