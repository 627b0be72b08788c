import type { Decision } from '../config/projectConfig.js';
import { anyCommand, isRootHomeOrSystem, readOnlyCommand, recursiveFlag, writesBlockDevice, writesOutside } from './commandRisk.js';
import type { Facts } from './facts.js';
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
export const BUILTIN_POLICY_VERSION = 'builtin-1';

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
    test: (f) => f.commandText !== undefined && (/([\w:.]+)\s*\(\)\s*\{[^}]*\1\s*\|\s*\1\s*&/.test(f.commandText) || /\bfork\s+while\s+fork\b/.test(f.commandText)),
  },
  {
    name: 'builtin:pipe-download-to-shell',
    priority: 1000,
    decision: 'deny',
    reason: 'runs code downloaded from the network',
    test: (f) =>
      f.commandText !== undefined &&
      (/\b(curl|wget)\b[^;&]*\|\s*(sudo\s+(-\S+\s+)*)?(\S*\/)?(ba|z|da|k|a)?sh\b/.test(f.commandText) ||
        /\b((ba|z|da|k|a)?sh|source|\.)\s+(-c\s+)?["']?(\$\(|<\(|`)\s*(curl|wget)\b/.test(f.commandText)),
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
