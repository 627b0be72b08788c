import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { resourcePath, type BridgeProject } from './bridgeProject.js';
import { Informer } from './informer.js';
import { connectKube, loadKubeConfig, type KubeClient } from './kubeClient.js';
import { eventRecorder } from './events.js';
import { LeaderElector } from './leaderElection.js';
import { isLeader, queueDepth, reconcileDuration, watchRestarts } from './metrics.js';
import { connectProjectRedis } from './projectRedis.js';
import { orphanedProjectKeys, reconcile } from './reconcile.js';
import { DEFAULT_QUEUE_OPTIONS, WorkQueue, type WorkQueueOptions } from './workQueue.js';

const REDIS_START_WAIT_MS = 5_000;

export type Log = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface OperatorOptions {
  redisUrl: string;
  /** The image restore Jobs run (normally the operator's own). */
  image?: string;
  /** Watch one namespace; all namespaces when absent. */
  namespace?: string;
  kubeconfig?: string;
  leaderElect: boolean;
  leaseName: string;
  /** Namespace of the Lease. */
  operatorNamespace: string;
  identity?: string;
  leaseDurationMs: number;
  relistAfterMs: number;
  queue?: Partial<WorkQueueOptions>;
  log: Log;
}

export interface RunningOperator {
  readonly isLeader: () => boolean;
  /** Stops reconciling, releases the Lease, closes connections. */
  stop(): Promise<void>;
  /** Resolves when the operator stopped by itself (leadership lost). */
  readonly done: Promise<void>;
}

/**
 * Starts the operator. With leader election it waits to be elected before reconciling, and stops
 * for good when leadership is lost (a restart campaigns afresh), as controller-runtime does: a
 * process that lost its lease cannot know what the new leader has done since.
 */
export async function startOperator(options: OperatorOptions): Promise<RunningOperator> {
  const kube: KubeClient = await connectKube(loadKubeConfig(options.kubeconfig));
  const redis = connectProjectRedis(options.redisUrl);
  const { log } = options;
  const identity = options.identity ?? `${hostname()}_${randomBytes(4).toString('hex')}`;
  const events = eventRecorder(kube, identity, log);
  const deps = { kube, redis, restore: { redisUrl: options.redisUrl, ...(options.image ? { image: options.image } : {}) }, events, log };

  const queue = new WorkQueue(
    async (key) => {
      const end = reconcileDuration.startTimer();
      try {
        const outcome = await reconcile(deps, key);
        end({ result: outcome.kind === 'retry' ? 'retry' : 'ok' });
        return outcome;
      } catch (error) {
        end({ result: 'error' });
        throw error;
      } finally {
        queueDepth.set(queue.length);
      }
    },
    (key, error, attempt) => log(attempt > 3 ? 'warn' : 'info', 'reconcile failed; retrying with backoff', { project: key, attempt, error: error instanceof Error ? error.message : String(error) }),
    { ...DEFAULT_QUEUE_OPTIONS, ...options.queue },
  );
  const informer = new Informer<BridgeProject>(kube, {
    path: resourcePath(options.namespace),
    relistAfterMs: options.relistAfterMs,
    onChange: (key) => {
      queue.add(key);
      queueDepth.set(queue.length);
    },
    modifiedMatters: specOrLifecycleChanged,
    onRelist: (present) =>
      void orphanedProjectKeys(redis, present, options.namespace).then(
        (keys) => keys.forEach((key) => queue.add(key)),
        // Redis down: the next relist looks again.
        (error: unknown) => log('warn', 'could not list Redis users for orphaned projects', { error: error instanceof Error ? error.message : String(error) }),
      ),
    onError: (error) => {
      watchRestarts.inc();
      log('warn', 'watch failed; relisting', { error: error instanceof Error ? error.message : String(error) });
    },
  });

  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let stopping: Promise<void> | undefined;
  const elector = options.leaderElect
    ? new LeaderElector(
        kube,
        {
          namespace: options.operatorNamespace,
          name: options.leaseName,
          identity,
          leaseDurationMs: options.leaseDurationMs,
          renewDeadlineMs: Math.floor(options.leaseDurationMs * (2 / 3)),
          retryPeriodMs: Math.max(200, Math.floor(options.leaseDurationMs / 5)),
        },
        log,
      )
    : undefined;

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      isLeader.set(0);
      await informer.stop();
      await queue.stop();
      await events.flush();
      await elector?.release();
      await redis.close();
      log('info', 'operator stopped');
      finish();
    })());

  const begin = async (): Promise<void> => {
    // Reconciling before the first connection would mark every project RedisReady=False for a moment.
    if (!(await redis.waitReady(REDIS_START_WAIT_MS))) log('warn', 'Redis not reachable yet; reconciling anyway, projects will report RedisReady=False');
    if (stopping) return;
    isLeader.set(1);
    log('info', 'operator reconciling', { namespace: options.namespace ?? '(all)' });
    informer.start();
  };
  if (elector) {
    // Campaign in the background so `stop()` works while waiting to be elected.
    void elector.run(() => void stop()).then(() => (elector.isLeader ? begin() : undefined));
  } else {
    void begin();
  }

  return { isLeader: () => elector?.isLeader ?? true, stop, done };
}

/**
 * Our own writes (finalizer, status) come back as MODIFIED events; reconciling them again would
 * double the work for nothing. Spec changes bump the generation; deletion sets a timestamp.
 * Anything else (drift in Redis, head, mounts, a finalizer removed by hand) is picked up by the
 * periodic relist.
 */
function specOrLifecycleChanged(previous: BridgeProject, next: BridgeProject): boolean {
  const a = previous.metadata;
  const b = next.metadata;
  return a.generation !== b.generation || a.deletionTimestamp !== b.deletionTimestamp;
}
