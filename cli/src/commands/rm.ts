import { parseArgs } from 'node:util';
import { DomainError } from '@lighthouse-bridge/core';
import { positionals, projectArg, runCommand, STORE_FLAGS, STORE_FLAGS_USAGE, withWorkspace, writeOut } from '../args.js';
import { EXIT } from '../command.js';

const USAGE = `usage: lighthouse-bridge rm <project> <path> [--store URL] [--actor NAME]
Deletes a file or symlink, or an empty directory.
${STORE_FLAGS_USAGE}`;

export function run(argv: string[]): Promise<number> {
  return runCommand('rm', USAGE, async () => {
    const { values, positionals: args } = parseArgs({ args: argv, options: STORE_FLAGS, allowPositionals: true });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = '', path = ''] = positionals(args, ['<project>', '<path>']);
    const project = projectArg(projectText);
    return withWorkspace(values, project, async (workspace) => {
      const node = workspace.lookup(path);
      if (!node) throw new DomainError('ENOENT', `${path} does not exist`);
      await workspace.execute(node.kind === 'directory' ? { type: 'RemoveDirectory', path } : { type: 'Delete', path });
      return EXIT.ok;
    });
  });
}
