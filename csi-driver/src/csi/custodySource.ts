import { custodyIn, custodyWith, keeperSocketIn, mountsDirIn, type CustodyOptions } from '../fuse/custody/custody.js';
import { Handover } from '../fuse/custody/handover.js';
import { KeeperClient } from '../fuse/custody/keeper.js';

/** Who keeps the node plugin's FUSE connections across its restarts, so a successor takes them over (ADR 0083). */
export interface CustodySource {
  /** Asked what it holds; asking never starts a keeper. */
  readonly keeper: KeeperClient;
  /** Custody of the mount at `target`, its journal and mirrors under the plugin's state dir. */
  custodyFor(target: string): Promise<CustodyOptions>;
  /** Whether our keeper, or during a rolling upgrade our predecessor's, holds a live connection at `target`. */
  holds(target: string): boolean;
}

/**
 * A keeper someone else runs on `socket`: the supervisor that restarts this plugin (the chart's
 * entrypoint, LHB_KEEPER_SOCKET) or one named by `--keeper-socket`. One that does not answer fails
 * the mount rather than being replaced, since its owner decides its life.
 */
export function givenKeeper(socket: string, stateDir: string, handover?: Handover): CustodySource {
  const keeper = new KeeperClient(socket);
  return {
    keeper,
    custodyFor: (target) => Promise.resolve(custodyWith(keeper, mountsDirIn(stateDir), target, handover)),
    holds: (target) => keeper.holds(target) || (handover?.holds(target) ?? false),
  };
}

/**
 * A rolling upgrade's handover, when our supervisor started as a successor (it sets
 * LHB_KEEPER_PREDECESSOR to the keeper of the plugin we replace, ADR 0083) and that keeper answers.
 */
export function predecessorHandover(socket: string | undefined, log: (message: string, fields: Record<string, unknown>) => void): Handover | undefined {
  if (!socket) return undefined;
  const predecessor = new KeeperClient(socket);
  return predecessor.alive() ? new Handover(predecessor, log) : undefined;
}

/**
 * The plugin's own keeper at `<stateDir>/keeper.sock`, started detached when a mount needs it and
 * none answers, and gone by itself once it holds nothing. Outside a container only: a detached
 * keeper dies with a container's init.
 */
export function ownKeeper(stateDir: string): CustodySource {
  const keeper = new KeeperClient(keeperSocketIn(stateDir));
  return { keeper, custodyFor: (target) => custodyIn(stateDir, target), holds: (target) => keeper.holds(target) };
}
