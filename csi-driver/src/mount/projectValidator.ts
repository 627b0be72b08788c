import { join } from 'node:path';
import { parseStoreUrl, type EventStore, type PolicyConfig, type ProjectId } from '@lighthouse-bridge/core';
import type { Logger } from '@lighthouse-bridge/core/observability';
import { createValidator, readProjectPolicy, type Validator } from '@lighthouse-bridge/core/speed-layer';

export interface ValidatorSettings {
  /** The store's URL; a Redis one also serves the shared decision cache and the project's policy. */
  storeUrl: string;
  /** A policy given on the command line; beats the one in the project's config. */
  policy?: PolicyConfig;
  logger?: Logger;
  /**
   * The project's `current/` as the agents see it, against which their absolute paths are judged.
   * Default: the local mountpoint's `current/`.
   */
  projectRoot?: string;
}

/**
 * The speed layer behind a mount's `/.bridge/validate`: escalations go on the mount's own store
 * (so an embedded store's single writer is the mount itself), and on Redis the operator's policy and
 * the shared L2 cache apply. Absolute paths are judged against `settings.projectRoot`, else against
 * the local `mountpoint`'s `current/`; with neither (a CSI mount whose pods' mount path is unknown:
 * the kubelet target is a host path agents never see) every absolute path counts as outside.
 */
export async function projectValidator(
  store: EventStore,
  project: ProjectId,
  mountpoint: string | undefined,
  settings: ValidatorSettings,
): Promise<Validator> {
  const redisUrl = parseStoreUrl(settings.storeUrl).kind === 'redis' ? settings.storeUrl : undefined;
  const policy = settings.policy ?? (redisUrl === undefined ? undefined : await readProjectPolicy(redisUrl, project));
  const projectRoot = settings.projectRoot ?? (mountpoint === undefined ? undefined : join(mountpoint, 'current'));
  return createValidator({
    project,
    store,
    ...(projectRoot === undefined ? {} : { projectRoot }),
    ...(policy === undefined ? {} : { policy }),
    ...(redisUrl === undefined ? {} : { redisUrl }),
    ...(settings.logger === undefined ? {} : { logger: settings.logger }),
    // This process answers file operations (for every mount on the node, in the CSI plugin): no
    // request may hold its thread, so requests are judged on a worker with a deadline.
    judgeThread: true,
  });
}
