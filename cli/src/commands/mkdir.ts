import { parseArgs } from 'node:util';
import { joinPath, normalizePath } from '@lighthouse-bridge/core';
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
      let dir = '';
      for (const part of path.split('/').filter((p) => p !== '')) {
        dir = joinPath(dir, part);
        // An existing file here is left for decide to refuse (ENOTDIR/EEXIST), as mkdir -p does.
        if (workspace.lookup(dir)?.kind !== 'directory') await workspace.execute({ type: 'MakeDirectory', path: dir });
      }
      return EXIT.ok;
    });
  });
}
