import { setTimeout as sleep } from 'node:timers/promises';
import { KubeApiError, type KubeClient } from './kubeClient.js';

/**
 * Lease-based leader election (coordination.k8s.io/v1), as client-go does it: a candidate takes
 * the Lease when its holder has not renewed it for a whole lease duration *as observed by this
 * process's own clock* (so clock skew between nodes does not matter), every write is guarded by
 * resourceVersion, and a leader that cannot renew within the renew deadline stops leading
 * before anyone else may take over. `release()` empties the holder so a successor starts at once.
 */
export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

export class LeaderElector {
  private observed: { key: string; at: number } | undefined;
  private stopped = false;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;
  /** False once a write of ours lost to another holder: then leadership ends without waiting for the deadline. */
  private holdsLease = false;

  constructor(
    private readonly kube: KubeClient,
    private readonly options: LeaderElectionOptions,
    private readonly log: (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until elected (then `isLeader` is true); keeps renewing and calls `onStopped` once if
   * leadership is lost. Resolves after election, or when released before it.
   */
  async run(onStopped: () => void): Promise<void> {
    while (!this.stopped) {
      if (await this.tryAcquireOrRenew()) break;
      await sleep(this.options.retryPeriodMs);
    }
    if (this.stopped) return;
    this.leading = true;
    this.lastRenew = performance.now();
    this.log('info', 'became leader', { lease: `${this.options.namespace}/${this.options.name}`, identity: this.options.identity });
    const renew = async (): Promise<void> => {
      if (this.stopped) return;
      const ok = await this.tryAcquireOrRenew();
      if (ok) this.lastRenew = performance.now();
      if (performance.now() - this.lastRenew > this.options.renewDeadlineMs || (!ok && !this.holdsLease)) {
        this.leading = false;
        this.log('warn', 'lost leadership', { lease: `${this.options.namespace}/${this.options.name}` });
        onStopped();
        return;
      }
      this.timer = setTimeout(() => void renew(), this.options.retryPeriodMs);
    };
    this.timer = setTimeout(() => void renew(), this.options.retryPeriodMs);
  }

  /** Stops campaigning/renewing; if leading, hands the Lease back so another replica need not wait. */
  async release(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.kube.getOptional<Lease>(this.path());
      if (lease?.spec.holderIdentity !== this.options.identity) return;
      await this.kube.replace(this.path(), {
        ...lease,
        spec: { ...lease.spec, holderIdentity: null, acquireTime: null, renewTime: null, leaseDurationSeconds: 1 },
      });
      this.log('info', 'released leadership', { lease: `${this.options.namespace}/${this.options.name}` });
    } catch (error) {
      this.log('warn', 'could not release the lease; it expires by itself', { error: String(error) });
    }
  }

  private path(name?: string): string {
    const base = `/apis/coordination.k8s.io/v1/namespaces/${this.options.namespace}/leases`;
    return name === '' ? base : `${base}/${name ?? this.options.name}`;
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date().toISOString().replace(/Z$/, '000Z');
    const mine = {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: Math.ceil(this.options.leaseDurationMs / 1000),
      renewTime: now,
    };
    try {
      const lease = await this.kube.getOptional<Lease>(this.path());
      if (!lease) {
        await this.kube.create(this.path(''), {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.options.name, namespace: this.options.namespace },
          spec: { ...mine, acquireTime: now, leaseTransitions: 0 },
        });
        this.holdsLease = true;
        return true;
      }
      const holder = lease.spec.holderIdentity ?? '';
      const key = `${holder}|${lease.spec.renewTime ?? ''}|${lease.metadata.resourceVersion ?? ''}`;
      if (this.observed?.key !== key) this.observed = { key, at: performance.now() };
      const durationMs = (lease.spec.leaseDurationSeconds ?? 0) * 1000;
      const expired = holder === '' || performance.now() - this.observed.at > durationMs;
      if (holder !== this.options.identity && !expired) {
        this.holdsLease = false;
        return false;
      }
      const spec =
        holder === this.options.identity
          ? { ...lease.spec, ...mine }
          : { ...lease.spec, ...mine, acquireTime: now, leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1 };
      // PUT carries resourceVersion: if another candidate wrote in between, this fails with 409.
      await this.kube.replace(this.path(), { ...lease, spec });
      this.holdsLease = true;
      return true;
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 409) {
        this.holdsLease = false;
        return false;
      }
      this.log('warn', 'leader election request failed', { error: String(error) });
      return false;
    }
  }
}
