import { createHash } from 'node:crypto';
import type { Decision, PolicyConfig, PolicyRule } from '../config/projectConfig.js';
import { BUILTIN_POLICY_VERSION, BUILTIN_RULES } from './builtinPolicy.js';
import type { Facts } from './facts.js';
import { globToRegExp, namePattern, type NameMatcher } from './glob.js';
import { LinearRegExp } from './linearRegex.js';

/** A policy that cannot be used (bad regular expression, unknown decision ...). */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

export interface Verdict {
  decision: Decision;
  reason: string;
  rule?: string;
}

interface CompiledRule {
  name: string;
  priority: number;
  decision: Decision;
  reason: string;
  tools: NameMatcher[] | undefined;
  agents: NameMatcher[] | undefined;
  test(facts: Facts): boolean;
}

export const DEFAULT_ESCALATION_TIMEOUT_MS = 30_000;

/**
 * The effective rule list (built-in and project rules merged and ordered once) plus everything that
 * decides what a cached answer means. `version` changes whenever any of it changes, and is part of
 * every cache key, so a policy change makes all older cache entries unreachable at once.
 */
export class Policy {
  readonly version: string;
  /** Whether any rule looks at the agent; only then is the agent's class part of the cache key. */
  readonly agentScoped: boolean;
  readonly defaultDecision: 'allow' | 'deny';
  readonly escalationTimeoutMs: number;
  readonly projectRoot: string | undefined;
  private readonly rules: CompiledRule[];
  private readonly agentClasses = new Map<string, string>();

  constructor(config: PolicyConfig = {}, options: { projectRoot?: string } = {}) {
    const mode = config.mode ?? 'extend';
    if (mode !== 'extend' && mode !== 'replace') throw new PolicyError(`policy mode must be "extend" or "replace", not "${String(mode)}"`);
    const defaultDecision = config.defaultDecision ?? 'deny';
    if (defaultDecision !== 'allow' && defaultDecision !== 'deny') throw new PolicyError(`defaultDecision must be "allow" or "deny"`);
    const timeout = config.escalationTimeoutSeconds;
    if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0 && timeout <= 86_400)) {
      throw new PolicyError('escalationTimeoutSeconds must be a number of seconds in (0, 86400]');
    }
    const projectRules = (config.rules ?? []).map((r, i) => compileRule(r, i));
    const builtins: CompiledRule[] = mode === 'replace' ? [] : BUILTIN_RULES.map((b) => ({ ...b, tools: undefined, agents: undefined }));
    // Stable sort: equal priorities keep their given order, built-in rules first.
    this.rules = [...builtins, ...projectRules].sort((a, b) => b.priority - a.priority);
    this.agentScoped = this.rules.some((r) => r.agents !== undefined);
    this.defaultDecision = defaultDecision;
    this.escalationTimeoutMs = timeout === undefined ? DEFAULT_ESCALATION_TIMEOUT_MS : timeout * 1000;
    this.projectRoot = options.projectRoot;
    this.version = createHash('sha256')
      .update(JSON.stringify({ builtin: BUILTIN_POLICY_VERSION, given: config.version ?? null, mode, defaultDecision, root: options.projectRoot ?? null, rules: config.rules ?? [] }))
      .digest('hex')
      .slice(0, 16);
  }

  /** The first rule, by priority, whose selectors and matchers all hold. */
  evaluate(facts: Facts): Verdict | undefined {
    for (const r of this.rules) {
      if (r.tools !== undefined && !r.tools.some((t) => t.test(facts.tool))) continue;
      if (r.agents !== undefined && !r.agents.some((a) => a.test(facts.agent))) continue;
      if (!r.test(facts)) continue;
      return { decision: r.decision, reason: r.reason, rule: r.name };
    }
    return undefined;
  }

  /**
   * Agents the policy cannot tell apart share a class: the set of agent-scoped rules whose
   * selectors they match. Keying the cache on it (not the agent id) keeps one agent's decision
   * from leaking to another that rules treat differently, while agents treated alike share hits.
   */
  agentClass(agent: string): string {
    if (!this.agentScoped) return '';
    let cls = this.agentClasses.get(agent);
    if (cls === undefined) {
      cls = this.rules.map((r) => (r.agents === undefined ? '' : r.agents.some((a) => a.test(agent)) ? '1' : '0')).join('');
      if (this.agentClasses.size >= 10_000) this.agentClasses.clear();
      this.agentClasses.set(agent, cls);
    }
    return cls;
  }
}

function compileRule(rule: PolicyRule, index: number): CompiledRule {
  const where = `policy rule ${index + 1}${typeof rule?.name === 'string' ? ` ("${rule.name}")` : ''}`;
  if (typeof rule !== 'object' || rule === null) throw new PolicyError(`${where} must be an object`);
  if (typeof rule.name !== 'string' || rule.name === '') throw new PolicyError(`${where} needs a name`);
  if (rule.decision !== 'allow' && rule.decision !== 'deny' && rule.decision !== 'escalate') {
    throw new PolicyError(`${where}: decision must be allow, deny or escalate`);
  }
  if (rule.priority !== undefined && !Number.isFinite(rule.priority)) throw new PolicyError(`${where}: priority must be a number`);
  const names = (field: 'tools' | 'agents'): NameMatcher[] | undefined => {
    const v = rule[field];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new PolicyError(`${where}: ${field} must be a list of names`);
    return v.map(namePattern);
  };
  const regex = (field: 'command' | 'content'): LinearRegExp | undefined => {
    const v = rule.match?.[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new PolicyError(`${where}: match.${field} must be a regular expression in a string`);
    try {
      return new LinearRegExp(v);
    } catch (error) {
      throw new PolicyError(`${where}: match.${field} is not a valid regular expression: ${(error as Error).message}`);
    }
  };
  const command = regex('command');
  const content = regex('content');
  const globs = rule.match?.paths;
  if (globs !== undefined && (!Array.isArray(globs) || globs.some((g) => typeof g !== 'string'))) throw new PolicyError(`${where}: match.paths must be a list of globs`);
  const paths = globs?.map((g) => globToRegExp(g));
  // An allow must cover every path the call touches; a deny or escalate needs only one.
  const pathsHold = (facts: Facts): boolean => {
    if (paths === undefined) return true;
    if (facts.paths.length === 0) return false;
    const hit = (p: string): boolean => paths.some((g) => g.test(p));
    return rule.decision === 'allow' ? facts.paths.every(hit) : facts.paths.some(hit);
  };
  return {
    name: rule.name,
    priority: rule.priority ?? 0,
    decision: rule.decision,
    reason: rule.reason ?? `rule ${rule.name}`,
    tools: names('tools'),
    agents: names('agents'),
    test: (facts) =>
      (command === undefined || (facts.commandText !== undefined && command.test(facts.commandText))) &&
      (content === undefined || facts.contents.some((c) => content.test(c))) &&
      pathsHold(facts),
  };
}
