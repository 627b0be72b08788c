import type { ProjectLimits } from '../aggregate/limits.js';

/**
 * What the operator writes, as JSON, to the project's `:config` key (ADR 0003) from the
 * BridgeProject spec, and what node plugins and the speed layer read. Every field is optional so a
 * project without a config (standalone use) falls back to the built-in defaults.
 */
export interface ProjectConfig {
  /** `metadata.generation` of the BridgeProject this was written from. */
  generation?: number;
  limits?: Partial<ProjectLimits>;
  access?: AccessConfig;
  policy?: PolicyConfig;
  storage?: { retentionDays?: number; snapshotInterval?: number; deletionPolicy?: 'Retain' | 'Delete' };
}

/**
 * Who may mount. Each entry names a service account as `NAMESPACE/NAME`, or `NAME` in the project's
 * own namespace; `*` in either part matches any. Read-write implies read-only and annotate.
 */
export interface AccessConfig {
  readWrite?: string[];
  readOnly?: string[];
  annotate?: string[];
}

export type Decision = 'allow' | 'deny' | 'escalate';

export interface PolicyConfig {
  /** Changes whenever the rules change; part of every decision-cache key. */
  version?: string;
  /** `replace` drops the built-in rules; `extend` (default) adds these to them. */
  mode?: 'extend' | 'replace';
  /** What applies when an escalation reaches its deadline. */
  defaultDecision?: 'allow' | 'deny';
  escalationTimeoutSeconds?: number;
  rules?: PolicyRule[];
}

/**
 * One rule. Rules are tried by descending `priority` (ties: the order given), across built-in and
 * project rules alike; the first whose selectors and matchers all hold decides.
 */
export interface PolicyRule {
  name: string;
  priority?: number;
  decision: Decision;
  reason?: string;
  /** Tool names; `*` wildcards allowed. Absent = any tool. */
  tools?: string[];
  /** Agent ids or classes; `*` wildcards allowed. Absent = any agent. */
  agents?: string[];
  match?: {
    /** Regular expression tested against the command text (`input.command`). */
    command?: string;
    /** Globs tested against every path in the input (`input.path`, `input.file_path`, `input.paths`). */
    paths?: string[];
    /** Regular expression tested against content being written (`input.content`, `input.new_string`). */
    content?: string;
  };
}
