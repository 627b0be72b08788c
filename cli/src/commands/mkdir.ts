import { parseArgs } from 'node:util';
import { normalizePath } from '@lighthouse-bridge/core';
import { makeDirectories } from '../makeDirectories.js';
import { positionals, projectArg, runCommand, STORE_FLAGS, STORE_FLAGS_USAGE, withWorkspace, writeOut } from '../args.js';
import { EXIT } from '../command.js';

const USAGE = `usage: lighthouse-bridge mkdir <project> <path> [-p] [--store URL] [--actor NAME]
Creates a directory; with -p, also its missing parents, and an existing directory is not an error.
${STORE_FLAGS_USAGE}`;

export function run(argv: string[]): Promise<number> {
  return runCommand('mkdir', USAGE, async () => {
    const { values, positionals: args } = parseArgs({
      args: argv,
      options: { ...STORE_FLAGS, parents: { type: 'boolean', short: 'p' } },
      allowPositionals: true,
    });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = '', pathText = ''] = positionals(args, ['<project>', '<path>']);
    const project = projectArg(projectText);
    return withWorkspace(values, project, async (workspace) => {
      const path = normalizePath(pathText, workspace.limits);
      if (!values.parents) {
        await workspace.execute({ type: 'MakeDirectory', path });
        return EXIT.ok;
      }
      await makeDirectories(workspace, path);
      return EXIT.ok;
    });
  });
}
