import { randomUUID } from 'node:crypto';
import type { PolicyConfig } from '../config/projectConfig.js';
import type { ProjectId } from '../events/projectId.js';
import type { EventStore } from '../store/eventStore.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { escalations, projectLabels, validationDuration } from '../observability/metrics.js';
import { CircuitBreaker } from '../resilience/circuitBreaker.js';
import { TokenBuckets, type RateLimit } from '../resilience/tokenBucket.js';
import { clientOptions, createRedisClient, whenReady } from '../redis/client.js';
import { describeLocation, parseRedisUrl } from '../redis/url.js';
import { LocalDecisionCache, RedisDecisionCache, type CachedDecision } from './decisionCache.js';
import { ExpertTier } from './expert.js';
import { judge, type Judgement } from './judge.js';
import { JudgeThread, type JudgeThreadOptions } from './judgeThread.js';
import { Policy, type Verdict } from './policy.js';
import type { Answer, Tier, ValidationRequest } from './request.js';

export interface ValidatorOptions {
  project: ProjectId;
  /** Project rules; merged with the built-in ones unless `mode: replace`. */
  policy?: PolicyConfig;
  /** Absolute path of the project tree as agents see it (e.g. the mount's `current/`). */
  projectRoot?: string;
  /**
   * Where escalations go. A function is called on the first escalation only, so a validator that
   * never escalates never opens (or locks) the store; what it opens is closed with the validator.
   */
  store?: EventStore | (() => Promise<EventStore>);
  /** Shared L2 decision cache. Without it, decisions are cached in this process only. */
  redisUrl?: string;
  /** L1 budget; default 16 MiB. */
  l1MaxBytes?: number;
  /** L2 entry lifetime; default one hour. */
  l2TtlSeconds?: number;
  /** Per-agent allowance; default 50/s with bursts of 200. `false` turns it off. */
  rateLimit?: RateLimit | false;
  /** Overrides the policy's `escalationTimeoutSeconds`. */
  escalationTimeoutMs?: number;
  /** For the Redis and the expert breakers; the breaker's defaults otherwise. */
  breaker?: { failureThreshold?: number; resetTimeoutMs?: number };
  /** Per Redis command; a slower answer counts as a failure. Default 250 ms. */
  redisCommandTimeoutMs?: number;
  /** How long creation waits for the first Redis connection; default 2 s. */
  redisConnectTimeoutMs?: number;
  logger?: Logger;
  /**
   * Judge requests on a worker thread (bounded queue, deadline: see JudgeThread) instead of the
   * caller's. A mount sets it: its thread answers file operations. Default: in the caller's thread.
   */
  judgeThread?: JudgeThreadOptions | boolean;
}

export interface ValidateOptions {
  /** Wait for the expert or the deadline (default). `false` answers `escalate` at once. */
  wait?: boolean;
}

export interface Validator {
  /** Never rejects: malformed requests and failures become `deny` answers that say why. */
  validate(request: unknown, options?: ValidateOptions): Promise<Answer>;
  readonly policyVersion: string;
  /** Stops the expert subscription and disconnects what the validator opened. */
  close(): Promise<void>;
}

const DEFAULT_RATE_LIMIT: RateLimit = { perSecond: 50, burst: 200 };

export async function createValidator(options: ValidatorOptions): Promise<Validator> {
  const policy = new Policy(options.policy, options.projectRoot === undefined ? {} : { projectRoot: options.projectRoot });
  const log = options.logger ?? createLogger('speed-layer');
  const l1 = new LocalDecisionCache(options.l1MaxBytes ?? 16 * 1024 * 1024);
  const rateLimit = options.rateLimit ?? DEFAULT_RATE_LIMIT;
  const buckets = rateLimit === false ? undefined : new TokenBuckets(rateLimit);
  let l2: RedisDecisionCache | undefined;
  if (options.redisUrl !== undefined) {
    const url = parseRedisUrl(options.redisUrl);
    const redis = createRedisClient(url, clientOptions.failFast(options.redisCommandTimeoutMs ?? 250), (error) => log.debug('Redis connection error', { error: error.message }));
    if (!(await whenReady(redis, options.redisConnectTimeoutMs ?? 2000))) log.warn('Redis not reachable yet; failing closed until it is', { redis: describeLocation(url) });
    l2 = new RedisDecisionCache(redis, options.project, options.l2TtlSeconds ?? 3600, new CircuitBreaker({ ...options.breaker, name: 'redis-l2' }));
  }
  let openedStore: Promise<EventStore> | undefined;
  const storeOption = options.store;
  const expert =
    storeOption === undefined
      ? undefined
      : new ExpertTier(
          options.project,
          typeof storeOption === 'function'
            ? () => {
                const opening = storeOption();
                openedStore = opening;
                return opening;
              }
            : () => Promise.resolve(storeOption),
          new CircuitBreaker({ ...options.breaker, name: 'expert' }),
          log,
        );
  const escalationTimeoutMs = options.escalationTimeoutMs ?? policy.escalationTimeoutMs;
  const thread =
    options.judgeThread === undefined || options.judgeThread === false
      ? undefined
      : new JudgeThread({ policy: options.policy, projectRoot: options.projectRoot }, options.judgeThread === true ? {} : options.judgeThread);
  const judgeRequest = (raw: unknown): Judgement | Promise<Judgement> => (thread === undefined ? judge(policy, raw) : thread.judge(raw));

  const who = projectLabels(options.project);
  const answer = (start: number, requestId: string, tier: Tier, v: Verdict, cached = false, error?: string): Answer => {
    const latencyMs = performance.now() - start;
    validationDuration.observe({ tier, decision: v.decision, ...who }, latencyMs / 1000);
    const a: Answer = { decision: v.decision, reason: v.reason, tier, cached, latencyMs, requestId };
    if (v.rule !== undefined) a.rule = v.rule;
    if (error !== undefined) a.error = error;
    return a;
  };

  const remember = async (key: string, value: CachedDecision): Promise<void> => {
    l1.set(key, value);
    if (l2 === undefined) return;
    try {
      await l2.set(key, value);
    } catch (error) {
      // The decision stands; the next process simply recomputes it.
      log.warn('could not share a decision in Redis', { error: (error as Error).message });
    }
  };

  const escalate = async (start: number, requestId: string, request: ValidationRequest, key: string, why: Verdict, wait: boolean): Promise<Answer> => {
    if (expert === undefined) {
      escalations.inc({ outcome: 'unavailable', ...who });
      return answer(start, requestId, 'fail-closed', { decision: 'deny', reason: `needs an expert (${why.reason}) but no store is configured for escalation` });
    }
    const outcome = expert.escalate(requestId, request, Date.now() + escalationTimeoutMs, { decision: policy.defaultDecision }).then(
      async (o) => {
        escalations.inc({ outcome: o.kind === 'deadline' ? 'deadline' : o.decision, ...who });
        if (o.kind === 'decided') await remember(key, { decision: o.decision, reason: `${o.reason} (expert ${o.by})`, source: 'expert' });
        return o;
      },
      (error: unknown) => {
        escalations.inc({ outcome: 'unavailable', ...who });
        throw error;
      },
    );
    if (!wait) {
      outcome.catch((error: unknown) => log.warn('escalation failed', { requestId, error: (error as Error).message }));
      return answer(start, requestId, 'expert', { ...why, decision: 'escalate' });
    }
    try {
      const o = await outcome;
      if (o.kind === 'deadline') {
        return answer(start, requestId, 'deadline', { decision: policy.defaultDecision, reason: `no expert decision within ${escalationTimeoutMs} ms (${why.reason})` });
      }
      return answer(start, requestId, 'expert', { decision: o.decision, reason: `${o.reason} (expert ${o.by})` });
    } catch (error) {
      log.warn('escalation failed; failing closed', { requestId, error: (error as Error).message });
      return answer(start, requestId, 'fail-closed', { decision: 'deny', reason: `needs an expert (${why.reason}) but the expert tier is unavailable: ${(error as Error).message}` });
    }
  };

  const validate = async (raw: unknown, validateOptions: ValidateOptions = {}): Promise<Answer> => {
    const start = performance.now();
    const requestId = randomUUID();
    const judged = await judgeRequest(raw);
    if (judged.kind === 'invalid') return answer(start, requestId, 'invalid', { decision: 'deny', reason: `invalid request: ${judged.error}` }, false, judged.error);
    if (judged.kind === 'unavailable') return answer(start, requestId, 'fail-closed', { decision: 'deny', reason: judged.reason });
    if (buckets !== undefined && !buckets.take(judged.agent)) {
      return answer(start, requestId, 'rate-limit', { decision: 'deny', reason: 'rate-limited' });
    }
    const { key, verdict } = judged;
    // A denial by a rule or the risk scorer is final: the caches are consulted only for what the
    // policy would allow or escalate, so no cache entry, whoever wrote it, turns a deny into an allow.
    if (verdict.decision === 'deny') {
      log.info('denied', { requestId, agent: judged.agent, tool: judged.tool, reason: verdict.reason, rule: verdict.rule });
      return answer(start, requestId, judged.tier, verdict);
    }

    const local = l1.get(key);
    if (local !== undefined) return answer(start, requestId, 'cache-l1', local, true);

    if (l2 !== undefined) {
      try {
        const shared = await l2.get(key);
        if (shared !== undefined) {
          l1.set(key, shared);
          return answer(start, requestId, 'cache-l2', shared, true);
        }
      } catch (error) {
        // Redis is where shared decisions and the operator's policy live: without it this process
        // cannot know it is up to date, so only what it already cached is answered.
        return answer(start, requestId, 'fail-closed', { decision: 'deny', reason: `decision cache unavailable, failing closed: ${(error as Error).message}` });
      }
    }

    if (verdict.decision === 'escalate') {
      if (judged.request === undefined) throw new Error('an escalation came without its request');
      log.info('escalating', { requestId, agent: judged.agent, tool: judged.tool, reason: verdict.reason, rule: verdict.rule });
      return escalate(start, requestId, judged.request, key, verdict, validateOptions.wait ?? true);
    }
    const final: CachedDecision = { decision: verdict.decision, reason: verdict.reason, source: judged.tier };
    if (verdict.rule !== undefined) final.rule = verdict.rule;
    await remember(key, final);
    return answer(start, requestId, judged.tier, final);
  };

  return {
    policyVersion: policy.version,
    async validate(request, validateOptions) {
      try {
        return await validate(request, validateOptions);
      } catch (error) {
        log.error('validation failed', { error: (error as Error).message });
        return { decision: 'deny', reason: `internal error, failing closed: ${(error as Error).message}`, tier: 'fail-closed', cached: false, latencyMs: 0, requestId: randomUUID(), error: (error as Error).message };
      }
    },
    async close() {
      await thread?.close();
      await expert?.close();
      await l2?.close();
      if (openedStore !== undefined) await openedStore.then((s) => s.close()).catch(() => undefined);
    },
  };
}
