import type { ProjectId } from '../events/projectId.js';

/** All of a project's Redis keys start with this; its braces are the Cluster hash tag. */
export function projectKeyPrefix(project: ProjectId): string {
  return `lhb:{${project.namespace}/${project.name}}:`;
}

/**
 * Every Redis key of a project (ADR 0020, "Key layout"; ADR 0062 for who may touch which). All share
 * the `{ns/name}` hash tag, so a project lives in one Cluster slot and the append script and MULTI
 * blocks may touch several of its keys.
 */
export interface ProjectKeys {
  /** Stream of events; entry id `<seq>-0`. */
  readonly log: string;
  /** Sorted set of snapshot sequence numbers (score = member = seq). */
  readonly snapshots: string;
  /** JSON `ProjectConfig` the operator writes from the BridgeProject spec. */
  readonly config: string;
  /** The node plugins' registry of active mounts (its type is theirs to choose). */
  readonly mounts: string;
  blob(hash: string): string;
  snapshot(seq: number): string;
  /** A decision shared by the speed layer's L2 cache. */
  decision(key: string): string;
}

export function projectKeys(project: ProjectId): ProjectKeys {
  const prefix = projectKeyPrefix(project);
  return {
    log: `${prefix}log`,
    snapshots: `${prefix}snaps`,
    config: `${prefix}config`,
    mounts: `${prefix}mounts`,
    blob: (hash) => `${prefix}blob:${hash}`,
    snapshot: (seq) => `${prefix}snap:${seq}`,
    decision: (key) => `${prefix}dec:${key}`,
  };
}

/** The key of chunk `index` of a chunked value whose header lives at `key`. */
export function chunkKey(key: string, index: number): string {
  return `${key}:${index}`;
}
