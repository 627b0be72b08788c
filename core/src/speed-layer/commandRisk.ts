import type { ParsedCommand, SimpleCommand } from './shell.js';
import { insideRoot } from './toolInput.js';

/**
 * Facts about shell commands shared by the built-in rules and the risk scorer. Lists are
 * deliberately short: a program missing from READ_ONLY is escalated, which is slow but safe.
 */

/** Programs that only read, unless given one of the arguments listed for them below. */
const READ_ONLY = new Set([
  'ls', 'cat', 'head', 'tail', 'wc', 'pwd', 'echo', 'printf', 'grep', 'egrep', 'fgrep', 'rg', 'stat', 'file', 'du', 'df',
  'which', 'whoami', 'id', 'date', 'uname', 'tree', 'diff', 'cmp', 'sort', 'uniq', 'cut', 'tr', 'basename', 'dirname',
  'realpath', 'readlink', 'true', 'false', 'test', '[', 'jq', 'md5sum', 'sha256sum', 'sha1sum', 'nl', 'column',
]);
/** Arguments that make a read-only program write files, run programs or change the system. */
const UNSAFE_ARGS: Record<string, RegExp> = {
  sort: /^(-[a-zA-Z]*o|--output|--compress-program)/,
  rg: /^--pre(=|$)/,
  tree: /^-[a-zA-Z]*o/,
  date: /^(-[a-zA-Z]*s|--set)/,
};
const GIT_READ_ONLY = new Set(['status', 'log', 'diff', 'show', 'rev-parse', 'ls-files', 'blame', 'describe', 'shortlog', 'grep']);
/** `-c`/`--config-env` can set a pager or hook to any program, `--exec-path` swaps git's own; `--output` writes. */
const GIT_UNSAFE_ARGS = /^(-c|--config-env|--exec-path|--output|--ext-diff|--textconv|--open-files-in-pager|-O)/;
/** Redirection targets that are not files. */
const HARMLESS_TARGETS = new Set(['/dev/null', '/dev/stdout', '/dev/stderr', '/dev/tty']);

export function harmlessWrites(c: SimpleCommand): boolean {
  return c.writes.every((w) => HARMLESS_TARGETS.has(w));
}

function readOnlyProgram(c: SimpleCommand): boolean {
  if (c.program === 'git') {
    const sub = c.args.find((a) => !a.startsWith('-'));
    return sub !== undefined && GIT_READ_ONLY.has(sub) && !c.args.some((a) => GIT_UNSAFE_ARGS.test(a));
  }
  const unsafe = UNSAFE_ARGS[c.program];
  return READ_ONLY.has(c.program) && (unsafe === undefined || !c.args.some((a) => unsafe.test(a)));
}

/** Every program in it only reads, nothing is written, no command substitution. */
export function readOnlyCommand(parsed: ParsedCommand): boolean {
  return parsed.commands.length > 0 && !parsed.substitution && parsed.commands.every((c) => readOnlyProgram(c) && harmlessWrites(c));
}

const SYSTEM_DIRS = new Set(['bin', 'boot', 'dev', 'etc', 'home', 'lib', 'lib32', 'lib64', 'opt', 'proc', 'root', 'sbin', 'srv', 'sys', 'usr', 'var']);

/** `/`, `/*`, `~`, `$HOME`, or a top-level system directory such as `/etc` or `/usr/`. */
export function isRootHomeOrSystem(target: string): boolean {
  const t = stripTrailingSlashes(target).replace(/^\/+/, '/');
  if (t === '' || t === '/' || t === '/.' || t === '/*') return true;
  if (/^(~[a-z_][a-z0-9_-]*|~|\$HOME|\$\{HOME\})$/.test(t)) return true;
  const m = /^\/([^/]+)$/.exec(t);
  return m !== null && SYSTEM_DIRS.has(m[1] as string);
}

/**
 * `target` without what `/(\/+\.?)*(\/\*)?$/` matches at its end (`/etc//./*` → `/etc`), in one
 * backward pass: that expression backtracks exponentially on a run of slashes not at the end.
 */
export function stripTrailingSlashes(target: string): string {
  let end = target.endsWith('/*') ? target.length - 2 : target.length;
  for (;;) {
    const dot = target[end - 1] === '.' ? end - 1 : end;
    let start = dot;
    while (start > 0 && target[start - 1] === '/') start--;
    if (start === dot) return target.slice(0, end);
    end = start;
  }
}

/** Two tests, not `^-[a-zA-Z]*[rR][a-zA-Z]*$`, which is quadratic on a long flag without a match. */
export function recursiveFlag(args: string[]): boolean {
  return args.some((a) => a === '--recursive' || (/^-[a-zA-Z]+$/.test(a) && /[rR]/.test(a)));
}

const BLOCK_DEVICE = /^\/dev\/(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|md\d|dm-\d|loop\d|nbd\d|sr\d|disk\/|mapper\/|mem$|kmem$|port$)/;

export function writesBlockDevice(c: SimpleCommand): boolean {
  if (c.writes.some((w) => BLOCK_DEVICE.test(w))) return true;
  if (c.program === 'dd') return c.args.some((a) => a.startsWith('of=') && BLOCK_DEVICE.test(a.slice(3)));
  if (c.program === 'tee' || c.program === 'cp' || c.program === 'shred' || c.program === 'cat') {
    return c.args.some((a) => BLOCK_DEVICE.test(a)) && (c.program !== 'cat' || c.writes.length > 0);
  }
  return false;
}

/** Files a command writes outside the project root (redirections, `tee`, the target of `cp`/`mv`). */
export function writesOutside(parsed: ParsedCommand, root: string | undefined): string[] {
  const out: string[] = [];
  for (const c of parsed.commands) {
    const targets = [...c.writes];
    const operands = c.args.filter((a) => !a.startsWith('-'));
    if (c.program === 'tee') targets.push(...operands);
    if ((c.program === 'cp' || c.program === 'mv' || c.program === 'install' || c.program === 'ln') && operands.length >= 2) {
      targets.push(operands[operands.length - 1] as string);
    }
    for (const t of targets) if (!HARMLESS_TARGETS.has(t) && !insideRoot(t, root)) out.push(t);
  }
  return out;
}

export function anyCommand(parsed: ParsedCommand | undefined, test: (c: SimpleCommand) => boolean): boolean {
  return parsed !== undefined && parsed.commands.some(test);
}
