import { projectKeyPrefix } from '../../config/projectConfig.js';
import type { ProjectId } from '../../events/projectId.js';

/**
 * The project's store keys (DESIGN §3). All share the `{ns/name}` hash tag, so a project lives in
 * one Cluster slot and the append script and MULTI blocks may touch several of its keys.
 */
export interface ProjectKeys {
  /** Stream of events; entry id `<seq>-0`. */
  readonly log: string;
  /** Sorted set of snapshot sequence numbers (score = member = seq). */
  readonly snapshots: string;
  blob(hash: string): string;
  snapshot(seq: number): string;
}

export function projectKeys(project: ProjectId): ProjectKeys {
  const prefix = projectKeyPrefix(project);
  return {
    log: `${prefix}log`,
    snapshots: `${prefix}snaps`,
    blob: (hash) => `${prefix}blob:${hash}`,
    snapshot: (seq) => `${prefix}snap:${seq}`,
  };
}

/** The key of chunk `index` of a chunked value whose header lives at `key`. */
export function chunkKey(key: string, index: number): string {
  return `${key}:${index}`;
}
