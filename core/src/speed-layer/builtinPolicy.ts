import type { Decision } from '../config/projectConfig.js';
import { anyCommand, isRootHomeOrSystem, readOnlyCommand, recursiveFlag, writesBlockDevice, writesOutside } from './commandRisk.js';
import type { Facts } from './facts.js';
import { LinearRegExp } from './linearRegex.js';
import { insideRoot, READ_ONLY_TOOLS } from './toolInput.js';

/** A rule written in code: what a YAML matcher cannot say (token-level shell analysis, the project root). */
export interface BuiltinRule {
  name: string;
  priority: number;
  decision: Decision;
  reason: string;
  test(facts: Facts): boolean;
}

/**
 * Bump whenever a built-in rule or the risk scorer changes meaning: it is part of the policy
 * version, so decisions cached under the old logic become unreachable.
 */
export const BUILTIN_POLICY_VERSION = 'builtin-2';

const FORK_WHILE_FORK = new LinearRegExp(String.raw`\bfork\s+while\s+fork\b`);
const DOWNLOAD_PIPED_TO_SHELL = new LinearRegExp(String.raw`\b(curl|wget)\b[^;&]*\|\s*(sudo\s+(-\S+\s+)*)?(\S*/)?(ba|z|da|k|a)?sh\b`);
const SHELL_RUNS_DOWNLOAD = new LinearRegExp('\\b((ba|z|da|k|a)?sh|source|\\.)\\s+(-c\\s+)?["\']?(\\$\\(|<\\(|`)\\s*(curl|wget)\\b');
/** Both start with a literal, which RE2 finds fast; the name before it is read backwards. */
const DEFINITION_PARENS = new LinearRegExp(String.raw`\(\)\s*\{`);
const PIPE_INTO_BACKGROUND = new LinearRegExp(String.raw`\|\s*([\w:.]+)\s*&`);
const NAME_CHAR = /[\w:.]/;
const SPACE = /\s/;

/** The `[\w:.]+` word that ends, after optional white space, right before `end`. */
function nameBefore(text: string, end: number): string {
  let i = end;
  while (i > 0 && SPACE.test(text[i - 1] as string)) i--;
  const wordEnd = i;
  while (i > 0 && NAME_CHAR.test(text[i - 1] as string)) i--;
  return text.slice(i, wordEnd);
}

/**
 * `name() { ... name | name & ...}`: a function that pipes itself into itself in the background,
 * inside its own body (no `}` between the `{` and the pipe). One pass over the definitions and the
 * pipes in text order, instead of a backreference, which RE2 lacks and V8 matched in quadratic time.
 */
function forkBomb(text: string): boolean {
  const pipes = [...PIPE_INTO_BACKGROUND.matches(text)].filter((p) => p.groups[0] === nameBefore(text, p.start));
  if (pipes.length === 0) return false;
  /** Where each name's latest definition opened its body. */
  const opened = new Map<string, number>();
  const definitions = DEFINITION_PARENS.matches(text);
  let next = definitions.next();
  let lastClose = -1;
  let scanned = 0;
  for (const pipe of pipes) {
    while (!next.done && next.value.end <= pipe.start) {
      const name = nameBefore(text, next.value.start);
      if (name !== '') opened.set(name, next.value.end);
      next = definitions.next();
    }
    for (; scanned < pipe.start; scanned++) if (text[scanned] === '}') lastClose = scanned;
    const body = opened.get(pipe.groups[0] as string);
    if (body !== undefined && body > lastClose) return true;
  }
  return false;
}

/** Built-in priorities leave room for project rules above (to override) and below (to refine). */
export const BUILTIN_RULES: readonly BuiltinRule[] = [
  {
    name: 'builtin:destroy-root-or-home',
    priority: 1000,
    decision: 'deny',
    reason: 'recursive delete of the root, a home or a system directory',
    test: (f) =>
      anyCommand(f.command, (c) => c.program === 'rm' && (c.args.includes('--no-preserve-root') || (recursiveFlag(c.args) && c.args.some(isRootHomeOrSystem)))),
  },
  {
    name: 'builtin:nul-in-command',
    priority: 1000,
    decision: 'deny',
    reason: 'a NUL byte in a command: the shell would run only the text before it, which no rule saw alone',
    test: (f) => f.commandText?.includes('\0') === true,
  },
  {
    name: 'builtin:raw-block-device-write',
    priority: 1000,
    decision: 'deny',
    reason: 'raw write to a block device',
    test: (f) => anyCommand(f.command, writesBlockDevice),
  },
  {
    name: 'builtin:make-filesystem',
    priority: 1000,
    decision: 'deny',
    reason: 'creates or wipes a filesystem',
    test: (f) => anyCommand(f.command, (c) => /^(mkfs(\..+)?|mke2fs|mkswap|wipefs)$/.test(c.program)),
  },
  {
    name: 'builtin:recursive-chmod-root',
    priority: 1000,
    decision: 'deny',
    reason: 'recursive permission or owner change of the root, a home or a system directory',
    test: (f) =>
      anyCommand(f.command, (c) => (c.program === 'chmod' || c.program === 'chown' || c.program === 'chgrp') && recursiveFlag(c.args) && c.args.some(isRootHomeOrSystem)),
  },
  {
    name: 'builtin:fork-bomb',
    priority: 1000,
    decision: 'deny',
    reason: 'fork bomb',
    test: (f) => f.commandText !== undefined && (forkBomb(f.commandText) || FORK_WHILE_FORK.test(f.commandText)),
  },
  {
    name: 'builtin:pipe-download-to-shell',
    priority: 1000,
    decision: 'deny',
    reason: 'runs code downloaded from the network',
    test: (f) =>
      f.commandText !== undefined &&
      (DOWNLOAD_PIPED_TO_SHELL.test(f.commandText) || SHELL_RUNS_DOWNLOAD.test(f.commandText)),
  },
  {
    name: 'builtin:write-outside-project',
    priority: 500,
    decision: 'escalate',
    reason: 'writes outside the project root',
    test: (f) =>
      (f.fileWrite && f.paths.some((p) => !insideRoot(p, f.projectRoot))) ||
      (f.command !== undefined && writesOutside(f.command, f.projectRoot).length > 0),
  },
  {
    name: 'builtin:read-only-tools',
    priority: 100,
    decision: 'allow',
    reason: 'read-only tool',
    test: (f) => READ_ONLY_TOOLS.test(f.tool) && !f.fileWrite,
  },
  {
    name: 'builtin:read-only-commands',
    priority: 100,
    decision: 'allow',
    reason: 'read-only command',
    test: (f) => f.command !== undefined && readOnlyCommand(f.command),
  },
];
