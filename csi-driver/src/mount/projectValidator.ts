import { join } from 'node:path';
import type { PolicyConfig } from '@lighthouse-bridge/core/config/projectConfig';
import type { ProjectId } from '@lighthouse-bridge/core/events/projectId';
import type { Logger } from '@lighthouse-bridge/core/observability/logger';
import { createValidator, type Validator } from '@lighthouse-bridge/core/speed-layer/index';
import { readProjectPolicy } from '@lighthouse-bridge/core/speed-layer/projectPolicy';
import { parseStoreUrl } from '@lighthouse-bridge/core/store/open';
import type { EventStore } from '@lighthouse-bridge/core/store/eventStore';

export interface ValidatorSettings {
  /** The store's URL; a Redis one also serves the shared decision cache and the project's policy. */
  storeUrl: string;
  /** A policy given on the command line; beats the one in the project's config. */
  policy?: PolicyConfig;
  logger?: Logger;
}

/**
 * The speed layer behind a mount's `/.bridge/validate`: escalations go on the mount's own store
 * (so an embedded store's single writer is the mount itself), paths are judged against the mount's
 * `current/` as agents see it, and on Redis the operator's policy and the shared L2 cache apply.
 */
export async function projectValidator(store: EventStore, project: ProjectId, mountpoint: string, settings: ValidatorSettings): Promise<Validator> {
  const redisUrl = parseStoreUrl(settings.storeUrl).kind === 'redis' ? settings.storeUrl : undefined;
  const policy = settings.policy ?? (redisUrl === undefined ? undefined : await readProjectPolicy(redisUrl, project));
  return createValidator({
    project,
    store,
    projectRoot: join(mountpoint, 'current'),
    ...(policy === undefined ? {} : { policy }),
    ...(redisUrl === undefined ? {} : { redisUrl }),
    ...(settings.logger === undefined ? {} : { logger: settings.logger }),
  });
}
