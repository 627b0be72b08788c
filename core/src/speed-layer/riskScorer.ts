import type { Verdict } from './policy.js';
import type { Facts } from './facts.js';
import { harmlessWrites, readOnlyCommand, recursiveFlag } from './commandRisk.js';
import type { SimpleCommand } from './shell.js';
import { LinearRegExp } from './linearRegex.js';
import { READ_ONLY_TOOLS } from './toolInput.js';

const PRIVATE_KEY = new LinearRegExp('-----BEGIN ([A-Z]+ )?PRIVATE KEY-----');
const SENSITIVE_PATH = new LinearRegExp(String.raw`(^|/)(\.git/|\.github/workflows/|\.env($|\.)|id_[a-z0-9]+$|[^/]*\.pem$)`);
const DECODE_TO_SHELL = new LinearRegExp(String.raw`base64\s+(-d|--decode|-D)\b[^;&]*\|\s*(\S*/)?(ba|z|da|k)?sh\b`);

/**
 * The tier after the rules: judges what no rule named. It denies on clear signs of harm, allows
 * only what it can justify (read-only commands and tools, writes inside the project, which the
 * event log makes undoable), and escalates everything else with the reasons it saw.
 */
export function scoreRisk(facts: Facts): Verdict {
  if (facts.command !== undefined) return scoreCommand(facts);
  const secret = facts.contents.find((c) => PRIVATE_KEY.test(c));
  if (secret !== undefined) return deny('writes a private key into the shared project log');
  if (facts.fileWrite) {
    const sensitive = facts.paths.find((p) => SENSITIVE_PATH.test(p));
    if (sensitive !== undefined) return escalate(`writes a sensitive file (${sensitive})`);
    if (facts.paths.length === 0) return escalate('a write without a path to judge');
    return { decision: 'allow', reason: 'write inside the project; every change is an event and can be undone' };
  }
  if (READ_ONLY_TOOLS.test(facts.tool)) return { decision: 'allow', reason: 'read-only tool' };
  return escalate(`unknown tool "${facts.tool}"`);
}

const POWER = new Set(['shutdown', 'reboot', 'halt', 'poweroff']);
const NETWORK = new Set(['curl', 'wget', 'ssh', 'scp', 'sftp', 'nc', 'ncat', 'netcat', 'socat', 'telnet', 'ftp', 'rsync']);
const PACKAGE_MANAGERS = new Set(['apt', 'apt-get', 'dpkg', 'yum', 'dnf', 'apk', 'pip', 'pip3', 'npm', 'pnpm', 'yarn', 'gem', 'cargo', 'go', 'brew']);
const ELEVATE = new Set(['sudo', 'doas', 'su']);

function scoreCommand(facts: Facts): Verdict {
  const parsed = facts.command;
  const text = facts.commandText ?? '';
  if (parsed === undefined) return escalate('no command');
  const signals: string[] = [];
  const has = (test: (c: SimpleCommand) => boolean): boolean => parsed.commands.some(test);

  if (has((c) => POWER.has(c.program) || (c.program === 'init' && /^[06]$/.test(c.args[0] ?? '')))) return deny('shuts down or reboots the machine');
  if (has((c) => (c.program === 'kill' || c.program === 'pkill') && c.args.includes('-1'))) return deny('kills every process');
  if (DECODE_TO_SHELL.test(text)) return deny('runs decoded, hidden code');
  if (has((c) => c.writes.some((w) => /^\/etc\/(passwd|shadow|sudoers|group)$/.test(w)))) return deny('overwrites system credentials');

  if (/^\s*(sudo|doas|su)\b/.test(text) || has((c) => ELEVATE.has(c.program))) signals.push('elevates privileges');
  if (has((c) => c.program === 'rm' && (recursiveFlag(c.args) || c.args.some((a) => /^-[a-zA-Z]*f/.test(a))))) signals.push('forced or recursive delete');
  if (has((c) => c.program === 'git' && (c.args.includes('--force') || c.args.includes('-f') || c.args.includes('--hard') || c.args[0] === 'clean'))) {
    signals.push('rewrites or discards git history or work');
  }
  if (has((c) => NETWORK.has(c.program))) signals.push('uses the network');
  if (has((c) => PACKAGE_MANAGERS.has(c.program) && c.args.some((a) => /^(install|add|i|get|remove|uninstall)$/.test(a)))) signals.push('installs or removes packages');
  if (parsed.substitution) signals.push('command substitution');
  if (has((c) => !harmlessWrites(c))) signals.push('writes files');

  if (signals.length === 0 && readOnlyCommand(parsed)) return { decision: 'allow', reason: 'read-only command' };
  return escalate(signals.length > 0 ? signals.join(', ') : 'no rule covers this command');
}

function deny(reason: string): Verdict {
  return { decision: 'deny', reason };
}

function escalate(reason: string): Verdict {
  return { decision: 'escalate', reason };
}
