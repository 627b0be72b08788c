import { stat, readFile } from 'node:fs/promises';
import { Agent, request, type RequestOptions } from 'node:https';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';

/**
 * A small JSON client for the few API calls the operator makes. The kubeconfig (in-cluster,
 * `KUBECONFIG`, `~/.kube/config`) is loaded by @kubernetes/client-node, which also supplies TLS and
 * credentials; requests are plain node:https so merge, JSON and server-side-apply patches, and
 * streaming watches, need no per-call middleware. Credentials are looked up per request, so a
 * rotated service-account token is used as soon as the kubelet replaces the file.
 */
export interface KubeClient {
  get<T>(path: string): Promise<T>;
  /** Resolves undefined on 404. */
  getOptional<T>(path: string): Promise<T | undefined>;
  create<T>(path: string, body: unknown): Promise<T>;
  replace<T>(path: string, body: unknown): Promise<T>;
  patch<T>(path: string, kind: PatchKind, body: unknown): Promise<T>;
  /** Server-side apply with this operator as field manager, taking over conflicting fields. */
  apply<T>(path: string, body: unknown): Promise<T>;
  /** Resolves on 200/202 and on 404 (already gone). */
  delete(path: string): Promise<void>;
  /** Streams watch events until the server closes the stream, `signal` aborts, or an error. */
  watch(path: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void>;
}

export type PatchKind = 'merge' | 'json';

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Record<string, unknown>;
}

/** An HTTP error status from the API server, with its `Status` reason. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export const FIELD_MANAGER = 'lighthouse-bridge-operator';
const REQUEST_TIMEOUT_MS = 30_000;

export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  return kc;
}

export async function connectKube(kc: KubeConfig): Promise<KubeClient> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig');
  const base = new URL(cluster.server);
  const options: RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  // TLS material from here; the headers it set would go stale, so they come per request instead.
  delete options.headers;
  const credentials = credentialsOf(kc);
  const secure = base.protocol === 'https:';
  // Reused connections: a reconcile makes several calls, and a TLS handshake each costs more than the call.
  options.agent = secure ? new Agent({ keepAlive: true, maxSockets: 32 }) : new HttpAgent({ keepAlive: true, maxSockets: 32 });

  const send = async (method: string, path: string, body: unknown, contentType: string) => {
    const headers: Record<string, string> = { ...(await credentials()), accept: 'application/json' };
    return new Promise<{ status: number; text: string }>((resolve, reject) => {
      const url = new URL(path, base);
      const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      if (payload !== undefined) headers['content-type'] = contentType;
      const req = (secure ? request : httpRequest)(
        url,
        { ...options, method, headers, timeout: REQUEST_TIMEOUT_MS },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  };

  const call = async <T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> => {
    const { status, text } = await send(method, path, body, contentType);
    if (status >= 200 && status < 300) return (text === '' ? {} : JSON.parse(text)) as T;
    throw apiError(method, path, status, text);
  };

  return {
    get: (path) => call('GET', path),
    getOptional: async <T>(path: string) => {
      try {
        return await call<T>('GET', path);
      } catch (error) {
        if (error instanceof KubeApiError && error.status === 404) return undefined;
        throw error;
      }
    },
    create: (path, body) => call('POST', path, body),
    replace: (path, body) => call('PUT', path, body),
    patch: (path, kind, body) => call('PATCH', path, body, kind === 'merge' ? 'application/merge-patch+json' : 'application/json-patch+json'),
    apply: (path, body) => call('PATCH', `${path}?fieldManager=${FIELD_MANAGER}&force=true`, body, 'application/apply-patch+yaml'),
    delete: async (path) => {
      try {
        await call('DELETE', path);
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 404)) throw error;
      }
    },
    watch: async (path, onEvent, signal) => {
      const headers = { ...(await credentials()), accept: 'application/json' };
      return new Promise<void>((resolve, reject) => {
        const url = new URL(path, base);
        const req = (secure ? request : httpRequest)(url, { ...options, method: 'GET', headers, signal }, (res) => {
          if (res.statusCode !== 200) {
            let text = '';
            res.setEncoding('utf8').on('data', (c: string) => (text += c));
            res.on('end', () => reject(apiError('WATCH', path, res.statusCode ?? 0, text)));
            return;
          }
          let buffered = '';
          res.setEncoding('utf8').on('data', (chunk: string) => {
            buffered += chunk;
            let newline: number;
            while ((newline = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, newline).trim();
              buffered = buffered.slice(newline + 1);
              if (line !== '') onEvent(JSON.parse(line) as WatchEvent);
            }
          });
          res.on('end', () => resolve());
          res.on('error', (error) => (signal.aborted ? resolve() : reject(error)));
        });
        req.on('error', (error) => (signal.aborted ? resolve() : reject(error)));
        req.end();
      });
    },
  };
}

/** The headers that authenticate one request (Authorization, impersonation). */
type Credentials = () => Promise<Record<string, string>>;

/**
 * In-cluster, the token is a file the kubelet replaces (atomically, by a symlink swap) well before
 * it expires; client-node reads it at most once a minute, and a token revoked early (its pod or
 * Secret deleted) would fail every call for that minute. So that file is read again whenever it
 * changed (a stat per request, microseconds beside the call); any other user (exec plugin, OIDC,
 * static token) is asked of client-node per request, which refreshes what expires.
 */
function credentialsOf(kc: KubeConfig): Credentials {
  const tokenFile: unknown = kc.getCurrentUser()?.authProvider?.config?.tokenFile;
  if (typeof tokenFile === 'string') return tokenFileCredentials(tokenFile);
  return async () => {
    const options: RequestOptions = {};
    await kc.applyToHTTPSOptions(options);
    return { ...(options.headers as Record<string, string> | undefined) };
  };
}

function tokenFileCredentials(path: string): Credentials {
  let seen = '';
  let headers: Record<string, string> = {};
  return async () => {
    const info = await stat(path);
    const version = `${info.ino}:${info.mtimeMs}:${info.size}`;
    if (version !== seen) {
      headers = { authorization: `Bearer ${(await readFile(path, 'utf8')).trim()}` };
      seen = version;
    }
    return headers;
  };
}

function apiError(method: string, path: string, status: number, text: string): KubeApiError {
  let reason = '';
  let message = text.slice(0, 2000);
  try {
    const parsed = JSON.parse(text) as { reason?: string; message?: string };
    reason = parsed.reason ?? '';
    message = parsed.message ?? message;
  } catch {
    // not a Status object; keep the raw text
  }
  return new KubeApiError(status, reason, `${method} ${path}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`);
}
