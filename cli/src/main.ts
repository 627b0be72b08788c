#!/usr/bin/env node
/**
 * `lighthouse-bridge <command> ...`. Each command lives in its own module, loaded only when used,
 * so `put` does not pay for gRPC or the Kubernetes client.
 *
 * Exit codes shared by all commands: 0 done, 1 refused by the project's rules or a conflict,
 * 2 usage error, 3 store unreachable (commands may document their own, e.g. `validate`).
 */
import { EXIT, type CommandModule } from './command.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  put: { summary: 'write a file from stdin or --from FILE; prints the event sequence', load: () => import('./commands/put.js') },
  cat: { summary: 'print a file, optionally as of --at SEQ|RFC3339', load: () => import('./commands/cat.js') },
  ls: { summary: 'list a directory, optionally as of --at SEQ|RFC3339', load: () => import('./commands/ls.js') },
  rm: { summary: 'delete a file (or an empty directory)', load: () => import('./commands/rm.js') },
  mv: { summary: 'rename a file or directory', load: () => import('./commands/mv.js') },
  mkdir: { summary: 'create a directory', load: () => import('./commands/mkdir.js') },
  repair: { summary: 'cut a damaged end off a project log (file:// stores), recording what was lost', load: () => import('./commands/repair.js') },
  log: { summary: 'print the event log (--from SEQ, --follow, --json)', load: () => import('./commands/log.js') },
  export: { summary: 'write a checksummed archive of a project (events and blobs) to --to FILE or stdout', load: () => import('./commands/export.js') },
  import: { summary: 'import an archive into an empty project (or --append onto its head), verified first', load: () => import('./commands/import.js') },
  mount: { summary: 'mount a project as a FUSE filesystem', load: () => import('./commands/mount.js') },
  validate: { summary: 'ask the speed layer whether an agent may run a tool', load: () => import('./commands/validate.js') },
  decide: { summary: "answer an escalated validation request as the expert", load: () => import('./commands/decide.js') },
  csi: { summary: 'run the CSI driver (node and/or controller) on a unix socket', load: () => import('./commands/csi.js') },
  operator: { summary: 'run the BridgeProject operator', load: () => import('./commands/operator.js') },
  backup: { summary: 'export every BridgeProject to DIR/NS/NAME/TIME.lhb, keeping the newest N', load: () => import('./commands/backup.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: lighthouse-bridge <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'lighthouse-bridge <command> --help' for a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`lighthouse-bridge: unknown command "${name}"\n\n${usage()}`);
    return EXIT.usage;
  }
  const command = await entry.load();
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`lighthouse-bridge: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = EXIT.error;
  },
);
