import { parseArgs } from 'node:util';
import { DomainError, joinPath, nameOf, normalizePath, stateAt, type TreeNode } from '@lighthouse-bridge/core';
import { parseAt, positionals, projectArg, resolveAt, runCommand, STORE_FLAGS, STORE_FLAGS_USAGE, withStore, writeOut } from '../args.js';
import { EXIT } from '../command.js';

const USAGE = `usage: lighthouse-bridge ls <project> [DIR] [--at SEQ|RFC3339] [--json] [--store URL]
Lists DIR (default: the root): one name per line, directories with a trailing "/", symlinks as
"name -> target"; --json prints one array of {name, path, kind, size, mode, mtime, hash, target}.
${STORE_FLAGS_USAGE}`;

export function run(argv: string[]): Promise<number> {
  return runCommand('ls', USAGE, async () => {
    const { values, positionals: args } = parseArgs({
      args: argv,
      options: { ...STORE_FLAGS, at: { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = '', dirText = ''] = positionals(args, ['<project>', '[DIR]'], 1);
    const project = projectArg(projectText);
    const at = values.at === undefined ? undefined : parseAt(values.at);
    return withStore(values.store, true, async (store) => {
      const state = await stateAt(store, project, await resolveAt(store, project, at));
      const dir = normalizePath(dirText);
      const node = state.nodes.get(dir);
      if (!node) throw new DomainError('ENOENT', `${dir} does not exist`);
      // Like ls(1): a file argument lists the file itself.
      const entries: Array<[string, TreeNode]> =
        node.kind === 'directory'
          ? [...node.children].sort().map((name) => [joinPath(dir, name), state.nodes.get(joinPath(dir, name)) as TreeNode])
          : [[dir, node]];
      if (values.json) {
        await writeOut(`${JSON.stringify(entries.map(([path, n]) => describe(path, n)))}\n`);
      } else {
        await writeOut(entries.map(([path, n]) => `${line(path, n)}\n`).join(''));
      }
      return EXIT.ok;
    });
  });
}

function line(path: string, node: TreeNode): string {
  const name = nameOf(path);
  if (node.kind === 'directory') return `${name}/`;
  if (node.kind === 'symlink') return `${name} -> ${node.target}`;
  return name;
}

function describe(path: string, node: TreeNode): Record<string, unknown> {
  const base = { name: nameOf(path), path, kind: node.kind, mtime: new Date(node.mtimeMs).toISOString() };
  if (node.kind === 'file') return { ...base, size: node.size, mode: node.mode, hash: node.hash };
  if (node.kind === 'directory') return { ...base, mode: node.mode, entries: node.children.size };
  return { ...base, target: node.target };
}
