import { parseArgs } from 'node:util';
import { DomainError, normalizePath, stateAt } from '@lighthouse-bridge/core';
import { parseAt, positionals, projectArg, resolveAt, runCommand, STORE_FLAGS, STORE_FLAGS_USAGE, withStore, writeOut } from '../args.js';
import { EXIT } from '../command.js';

const USAGE = `usage: lighthouse-bridge cat <project> <path> [--at SEQ|RFC3339] [--store URL]
Prints the file's bytes as they are now, or as of event SEQ or instant RFC3339.
${STORE_FLAGS_USAGE}`;

export function run(argv: string[]): Promise<number> {
  return runCommand('cat', USAGE, async () => {
    const { values, positionals: args } = parseArgs({ args: argv, options: { ...STORE_FLAGS, at: { type: 'string' } }, allowPositionals: true });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = '', pathText = ''] = positionals(args, ['<project>', '<path>']);
    const project = projectArg(projectText);
    const at = values.at === undefined ? undefined : parseAt(values.at);
    // Read-only, so it works beside a running mount that holds the embedded writer lock.
    return withStore(values.store, true, async (store) => {
      const state = await stateAt(store, project, await resolveAt(store, project, at));
      const path = normalizePath(pathText);
      const node = state.nodes.get(path);
      if (!node) throw new DomainError('ENOENT', `${path} does not exist${at ? ` at event ${state.seq}` : ''}`);
      if (node.kind === 'directory') throw new DomainError('EISDIR', `${path || '/'} is a directory`);
      if (node.kind === 'symlink') throw new DomainError('EINVAL', `${path} is a symlink to ${node.target}`);
      const content = await store.getBlob(project, node.hash);
      if (!content) throw new Error(`the store is missing the content of ${path} (blob ${node.hash})`);
      await writeOut(content);
      return EXIT.ok;
    });
  });
}
