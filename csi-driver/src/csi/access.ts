import { StoreUnavailableError, type AccessConfig, type ProjectConfig, type ProjectId } from '@lighthouse-bridge/core';
import { clientOptions, createRedisClient, projectKeys, type RedisUrl } from '@lighthouse-bridge/core/redis';

/** Where the operator's per-project config is read from. */
export interface ConfigSource {
  get(project: ProjectId): Promise<ProjectConfig | undefined>;
  close(): Promise<void>;
}

/** The embedded store has no operator writing configs: every project runs on defaults. */
export const noConfig: ConfigSource = {
  get: async () => undefined,
  close: async () => undefined,
};

/** A publish waiting on an unreachable Redis must fail (UNAVAILABLE, kubelet retries), not hang. */
const CONFIG_DEADLINE_MS = 5000;

/** Reads the project's `:config` key (ADR 0003) with its own connection, separate from the store's. */
export function redisConfigSource(url: RedisUrl): ConfigSource {
  // Connection errors surface as failed reads (UNAVAILABLE to kubelet).
  const client = createRedisClient(url, clientOptions.configReader());
  return {
    async get(project) {
      let text: string | null;
      let timer: NodeJS.Timeout | undefined;
      try {
        text = await Promise.race([
          client.get(projectKeys(project).config),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${CONFIG_DEADLINE_MS} ms`)), CONFIG_DEADLINE_MS);
          }),
        ]);
      } catch (error) {
        throw new StoreUnavailableError(`cannot read the config of ${project.namespace}/${project.name}: ${(error as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
      if (text === null) return undefined;
      return JSON.parse(text) as ProjectConfig;
    },
    async close() {
      client.disconnect();
    },
  };
}

/** The pod asking to mount, from the `csi.storage.k8s.io/pod.*` attributes kubelet adds. */
export interface PodIdentity {
  namespace: string;
  serviceAccount: string;
}

export type AccessDecision = { allowed: true } | { allowed: false; reason: string };

/**
 * Whether `pod` may mount `project` (read-only or read-write). Pure: the config is read by the
 * caller. Without a config every pod may mount, unless the plugin requires one.
 */
export function decideAccess(
  project: ProjectId,
  config: ProjectConfig | undefined,
  pod: PodIdentity | undefined,
  readOnly: boolean,
  requireConfig: boolean,
): AccessDecision {
  const access: AccessConfig | undefined = config?.access;
  const name = `${project.namespace}/${project.name}`;
  if (!access) {
    return requireConfig ? { allowed: false, reason: `project ${name} has no access configuration and this node requires one` } : { allowed: true };
  }
  if (!pod) {
    return { allowed: false, reason: `project ${name} restricts access but the pod's service account is unknown (is podInfoOnMount enabled on the CSIDriver?)` };
  }
  const who = `${pod.namespace}/${pod.serviceAccount}`;
  const matches = (entries: string[] | undefined): boolean => (entries ?? []).some((entry) => entryMatches(entry, pod, project));
  if (matches(access.readWrite)) return { allowed: true };
  const mayRead = matches(access.readOnly) || matches(access.annotate);
  if (mayRead && readOnly) return { allowed: true };
  if (mayRead) return { allowed: false, reason: `service account ${who} may mount project ${name} only read-only; set readOnly: true on the volume` };
  return { allowed: false, reason: `service account ${who} may not mount project ${name}` };
}

/** `NS/NAME`, or `NAME` in the project's namespace; `*` in either part matches anything. */
function entryMatches(entry: string, pod: PodIdentity, project: ProjectId): boolean {
  const slash = entry.indexOf('/');
  const namespace = slash >= 0 ? entry.slice(0, slash) : project.namespace;
  const account = slash >= 0 ? entry.slice(slash + 1) : entry;
  return (namespace === '*' || namespace === pod.namespace) && (account === '*' || account === pod.serviceAccount);
}
