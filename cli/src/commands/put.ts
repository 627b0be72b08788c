import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DomainError, normalizePath } from '@lighthouse-bridge/core';
import { makeParents } from '../makeDirectories.js';
import { positionals, projectArg, runCommand, STORE_FLAGS, STORE_FLAGS_USAGE, withWorkspace, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

const USAGE = `usage: lighthouse-bridge put <project> <path> [--from FILE] [--mode OCTAL] [--store URL] [--actor NAME]
Writes stdin (or FILE) to <path>, creating missing parent directories, and prints the sequence
number of the FileWritten event.
${STORE_FLAGS_USAGE}`;

export function run(argv: string[]): Promise<number> {
  return runCommand('put', USAGE, async () => {
    const { values, positionals: args } = parseArgs({
      args: argv,
      options: { ...STORE_FLAGS, from: { type: 'string' }, mode: { type: 'string' } },
      allowPositionals: true,
    });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = '', pathText = ''] = positionals(args, ['<project>', '<path>']);
    const project = projectArg(projectText);
    let mode: number | undefined;
    if (values.mode !== undefined) {
      if (!/^[0-7]{1,4}$/.test(values.mode)) throw new UsageError(`--mode expects octal permissions such as 644, got "${values.mode}"`);
      mode = parseInt(values.mode, 8);
    }
    const content = values.from === undefined ? await readStdin() : await readFile(values.from);
    return withWorkspace(values, project, async (workspace) => {
      const path = normalizePath(pathText, workspace.limits);
      if (path === '') throw new DomainError('EISDIR', 'the project root is a directory');
      // Refuse oversized content before creating directories for it.
      if (content.byteLength > workspace.limits.maxFileBytes) {
        throw new DomainError('EFBIG', `${content.byteLength} bytes is over the ${workspace.limits.maxFileBytes}-byte file limit`);
      }
      await makeParents(workspace, path);
      const events = await workspace.writeFile(path, content, mode === undefined ? {} : { mode });
      const written = events.find((e) => e.type === 'FileWritten');
      await writeOut(`${written?.seq ?? workspace.head}\n`);
      return EXIT.ok;
    });
  });
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
