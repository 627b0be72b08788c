import { createHash } from 'node:crypto';
import { closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BridgeFs } from '../bridgeFs.js';
import { adoptKernel, mountKernel, type KernelMount, type SessionSetup } from '../kernel/mount.js';
import { abortConnection } from '../../mount/mountpoint.js';
import type { FuseSession } from '../kernel/session.js';
import { JournalFile, type JournalState } from './journal.js';
import type { Handover } from './handover.js';
import { ensureKeeper, type Held, type KeeperClient } from './keeper.js';
import { MirrorDirectory } from './mirrors.js';

/** Where one mount's descriptor is kept, and its journal and mirrors (ADR 0083). */
export interface CustodyOptions {
  keeper: KeeperClient;
  /** This mount's name in the keeper: its mountpoint, so the same command finds it again. */
  name: string;
  /** This mount's own directory for its journal and writer mirrors. */
  dir: string;
  /** A rolling upgrade in progress: the predecessor's keeper may hold this mount (ADR 0083). */
  handover?: Handover | undefined;
}

/** A keeper started for mounts exits this long after it last held one. */
const KEEPER_IDLE_EXIT_SECONDS = 10;
/**
 * How long a mount whose server died waits for the same command to take it over before the keeper
 * ends it (ENOTCONN): long enough for a supervisor's or a person's restart, short enough that a
 * forgotten crash does not hang its users forever.
 */
const KEEPER_ORPHAN_TIMEOUT_SECONDS = 60;

/**
 * Custody of the mount named `name` under `dir`: one keeper per directory (started when none
 * answers), one subdirectory per mount for its journal and mirrors.
 */
export async function custodyIn(dir: string, name: string): Promise<CustodyOptions> {
  return custodyWith(await ensureKeeper(keeperSocketIn(dir), KEEPER_IDLE_EXIT_SECONDS, KEEPER_ORPHAN_TIMEOUT_SECONDS), mountsDirIn(dir), name);
}

/** The socket of the keeper `custodyIn(dir, …)` uses. */
export function keeperSocketIn(dir: string): string {
  return join(dir, 'keeper.sock');
}

/** Where custody under `dir` keeps each mount's journal and mirrors. */
export function mountsDirIn(dir: string): string {
  return join(dir, 'mounts');
}

/** Custody of `name` by `keeper`, its journal and mirrors in a subdirectory of `mountsDir` named for it. */
export function custodyWith(keeper: KeeperClient, mountsDir: string, name: string, handover?: Handover): CustodyOptions {
  return { keeper, name, dir: join(mountsDir, createHash('sha256').update(name).digest('hex').slice(0, 16)), handover };
}

const PAYLOAD_VERSION = 1;

/** What the keeper stores beside the descriptor: enough for a successor to serve the same connection. */
interface Payload {
  v: number;
  /** The kernel's INIT request as the first server read it (base64). */
  init: string;
}

/** The INIT request a predecessor answered, from what the keeper stored beside its descriptor. */
function initOf(stored: Buffer, name: string): Buffer {
  const payload = JSON.parse(stored.toString('utf8')) as Partial<Payload>;
  if (payload.v !== PAYLOAD_VERSION || typeof payload.init !== 'string') {
    throw new Error(`the keeper holds ${name} in custody format ${String(payload.v)}; this version reads ${PAYLOAD_VERSION}`);
  }
  return Buffer.from(payload.init, 'base64');
}

/** A mount in custody: its connection survives this process, for the same command to take back. */
export class Custody {
  readonly mirrors: MirrorDirectory;
  private journal: JournalFile | undefined;
  /** The held descriptor belongs to a session now (it closes it). */
  private adopted = false;

  private constructor(
    private readonly options: CustodyOptions,
    private readonly held: Held | undefined,
    /** Held through a rolling upgrade's handover: served only once the predecessor retired. */
    private readonly handedOver: boolean,
  ) {
    // A new mount starts from nothing: whatever a dead keeper's mount left here is not ours.
    if (!held) rmSync(options.dir, { recursive: true, force: true });
    this.mirrors = new MirrorDirectory(join(options.dir, 'mirrors'));
  }

  /** Asks the keeper whether it holds this mount's connection. */
  static claim(options: CustodyOptions): Custody {
    const own = options.keeper.get(options.name);
    if (own || !options.handover?.holds(options.name)) return new Custody(options, own, false);
    // Our keeper holds a duplicate from now on, so the mount survives whatever happens to either side.
    const theirs = options.handover.predecessor.get(options.name);
    if (!theirs) options.handover.abandon(options.name);
    else {
      try {
        options.keeper.put(options.name, theirs.fd, theirs.payload);
      } catch (error) {
        // Nobody serves this mount then: the predecessor must not wait for us, nor the duplicate stay open.
        closeSync(theirs.fd);
        options.handover.abandon(options.name);
        throw error;
      }
    }
    return new Custody(options, theirs, theirs !== undefined);
  }

  /** This mount will not be taken over after all (it failed before serving): nobody waits for it. */
  abandon(): void {
    if (this.handedOver) this.options.handover?.abandon(this.options.name);
    if (this.held && !this.adopted) closeSync(this.held.fd);
    this.adopted = true;
  }

  /** True when a predecessor's live connection is there to take over. */
  get takingOver(): boolean {
    return this.held !== undefined;
  }

  private get journalPath(): string {
    return join(this.options.dir, 'journal');
  }

  /** A new mount at `mountpoint`, its descriptor handed to the keeper once the kernel said INIT. */
  async mount(mountpoint: string, setup: Omit<SessionSetup, 'journal' | 'onInit'>): Promise<KernelMount> {
    this.journal = JournalFile.create(this.journalPath);
    let init: Buffer | undefined;
    const mounted = await mountKernel(mountpoint, { ...setup, journal: this.journal, onInit: (raw) => (init = raw) });
    try {
      // The workspace's replay since the keeper was last asked may have outlasted a detached keeper.
      await this.options.keeper.ready();
      const payload: Payload = { v: PAYLOAD_VERSION, init: init!.toString('base64') };
      this.options.keeper.put(this.options.name, mounted.fd, Buffer.from(JSON.stringify(payload)));
    } catch (error) {
      await mounted.unmount().catch(() => undefined);
      throw error;
    }
    return mounted;
  }

  /** Serves the connection the keeper held: the same node ids and descriptors as the predecessor. */
  async takeOver(mountpoint: string, fs: BridgeFs, setup: Omit<SessionSetup, 'journal' | 'onInit'>, report: (error: unknown) => void): Promise<KernelMount> {
    const held = this.held!;
    if (this.handedOver) {
      // The predecessor writes the journal until it stops: read it only once it has.
      await this.options.handover!.ready();
      // It also records files until then, which our tail of the log may not have brought yet: a
      // pod's read right after the switch must see its own last write. A store error here only
      // delays that until the tail catches up, so it is reported, not fatal.
      await fs.workspace.catchUp().catch(report);
    }
    // From here on the descriptor is this method's: served, or closed below.
    this.adopted = true;
    let serving = false;
    try {
      const init = initOf(held.payload, this.options.name);
      const { journal, state, skipped } = JournalFile.resume(this.journalPath);
      if (skipped > 0) report(new Error(`custody journal of ${this.options.name}: ${skipped} damaged line(s) skipped`));
      this.journal = journal;
      const mounted = await adoptKernel(mountpoint, held.fd, init, { ...setup, journal }, (session) => this.restore(session, fs, state, report));
      serving = true;
      return mounted;
    } catch (error) {
      if (!serving) closeSync(held.fd);
      // A connection nobody can serve must not hang its users: end it (they get ENOTCONN) and let
      // whoever mounts next mount afresh (ADR 0071).
      await abortConnection(mountpoint).catch(() => undefined);
      this.options.keeper.drop(this.options.name);
      throw error;
    }
  }

  private async restore(session: FuseSession, fs: BridgeFs, state: JournalState, report: (error: unknown) => void): Promise<void> {
    session.nodes.restore(state.nodes.values());
    for (const handle of state.handles.values()) {
      const path = session.nodes.path(handle.nodeId);
      // Unlinked while open: its content was deleted, and later writes go nowhere anyway.
      if (path === undefined) continue;
      try {
        await fs.reopen(handle.fh, path, handle.flags, handle.mirror === undefined ? undefined : this.mirrors.restore(handle.mirror));
        session.adoptHandle(handle.fh, handle.nodeId);
      } catch (error) {
        report(error);
      }
    }
    this.mirrors.removeUnclaimed();
  }

  /** The mount is gone for good (unmounted): nothing is kept for a successor. */
  release(): void {
    try {
      this.options.keeper.drop(this.options.name);
    } finally {
      this.journal?.close();
      this.journal = undefined;
      this.mirrors.close();
      rmSync(this.options.dir, { recursive: true, force: true });
    }
  }
}
