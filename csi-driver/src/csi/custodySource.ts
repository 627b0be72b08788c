import { custodyIn, custodyWith, keeperSocketIn, mountsDirIn, type CustodyOptions } from '../fuse/custody/custody.js';
import { KeeperClient } from '../fuse/custody/keeper.js';

/** Who keeps the node plugin's FUSE connections across its restarts, so a successor takes them over (ADR 0083). */
export interface CustodySource {
  /** Asked what it holds; asking never starts a keeper. */
  readonly keeper: KeeperClient;
  /** Custody of the mount at `target`, its journal and mirrors under the plugin's state dir. */
  custodyFor(target: string): Promise<CustodyOptions>;
}

/**
 * A keeper someone else runs on `socket`: the supervisor that restarts this plugin (the chart's
 * entrypoint, LHB_KEEPER_SOCKET) or one named by `--keeper-socket`. One that does not answer fails
 * the mount rather than being replaced, since its owner decides its life.
 */
export function givenKeeper(socket: string, stateDir: string): CustodySource {
  const keeper = new KeeperClient(socket);
  return { keeper, custodyFor: (target) => Promise.resolve(custodyWith(keeper, mountsDirIn(stateDir), target)) };
}

/**
 * The plugin's own keeper at `<stateDir>/keeper.sock`, started detached when a mount needs it and
 * none answers, and gone by itself once it holds nothing. Outside a container only: a detached
 * keeper dies with a container's init.
 */
export function ownKeeper(stateDir: string): CustodySource {
  return { keeper: new KeeperClient(keeperSocketIn(stateDir)), custodyFor: (target) => custodyIn(stateDir, target) };
}
