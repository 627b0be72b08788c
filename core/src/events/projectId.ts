/**
 * A project is named `<namespace>/<name>` (Kubernetes namespace and BridgeProject name); a bare
 * `<name>` means namespace `default`. Both parts are DNS-1123 labels, so they are safe in file
 * names, Redis keys and ACL user names without escaping.
 */
export interface ProjectId {
  readonly namespace: string;
  readonly name: string;
}

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export class InvalidProjectIdError extends Error {
  override readonly name = 'InvalidProjectIdError';
}

export function parseProjectId(text: string): ProjectId {
  const parts = text.split('/');
  const [namespace, name] = parts.length === 1 ? ['default', parts[0]] : parts;
  if (parts.length > 2 || namespace === undefined || name === undefined || !LABEL.test(namespace) || !LABEL.test(name)) {
    throw new InvalidProjectIdError(
      `invalid project "${text}": expected NAME or NAMESPACE/NAME, each a lowercase DNS label (a-z, 0-9, '-', at most 63 characters)`,
    );
  }
  return { namespace, name };
}

export function formatProjectId(id: ProjectId): string {
  return `${id.namespace}/${id.name}`;
}
