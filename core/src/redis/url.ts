import { StoreUrlError } from '../store/eventStore.js';

/** A parsed `redis://`, `rediss://` or `redis+cluster://` URL. */
export interface RedisUrl {
  kind: 'redis';
  nodes: Array<{ host: string; port: number }>;
  db: number;
  cluster: boolean;
  username?: string;
  password?: string;
  tls: boolean;
}

const REDIS_SCHEMES = new Set(['redis', 'rediss', 'redis+cluster']);

/** Whether `scheme` (without `://`) names a Redis deployment. */
export function isRedisScheme(scheme: string): boolean {
  return REDIS_SCHEMES.has(scheme);
}

/**
 * Parses `redis://[user:pass@]HOST:PORT[/DB]`, `rediss://...` (TLS) and `redis+cluster://H1:P1,H2:P2`.
 * Throws `StoreUrlError` with the reason.
 */
export function parseRedisUrl(url: string): RedisUrl {
  const scheme = /^([a-z+]+):\/\/(.*)$/.exec(url);
  const [, proto = '', rest = ''] = scheme ?? [];
  if (!isRedisScheme(proto)) throw new StoreUrlError(`invalid Redis URL "${url}": expected redis://HOST:PORT[/DB], rediss://... or redis+cluster://H1:P1,H2:P2`);
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const hostsAndPath = at >= 0 ? rest.slice(at + 1) : rest;
  const slash = hostsAndPath.indexOf('/');
  const hostList = slash >= 0 ? hostsAndPath.slice(0, slash) : hostsAndPath;
  const dbText = slash >= 0 ? hostsAndPath.slice(slash + 1) : '';
  const cluster = proto === 'redis+cluster';
  const nodes = hostList.split(',').map((hp) => parseHostPort(hp, url));
  if (nodes.length === 0 || (!cluster && nodes.length > 1)) {
    throw new StoreUrlError(`invalid store URL "${url}": redis:// takes one HOST:PORT; use redis+cluster:// for several`);
  }
  let db = 0;
  if (dbText !== '') {
    if (!/^\d{1,2}$/.test(dbText) || Number(dbText) > 15 || cluster) throw new StoreUrlError(`invalid store URL "${url}": database must be a number 0-15, and Redis Cluster has only database 0`);
    db = Number(dbText);
  }
  const parsed: RedisUrl = { kind: 'redis', nodes, db, cluster, tls: proto === 'rediss' };
  if (auth !== '') {
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : '');
    const pass = decodeURIComponent(colon >= 0 ? auth.slice(colon + 1) : auth);
    if (user !== '') parsed.username = user;
    parsed.password = pass;
  }
  return parsed;
}

function parseHostPort(text: string, url: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text);
  const port = m?.[2] === undefined ? 6379 : Number(m[2]);
  if (!m?.[1] || port < 1 || port > 65535) throw new StoreUrlError(`invalid store URL "${url}": bad host:port "${text}"`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/** `redis://host:port/db` or `redis+cluster://h1:p1,...`, never with credentials. */
export function describeLocation(url: RedisUrl): string {
  const hosts = url.nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',');
  if (url.cluster) return `redis+cluster://${hosts}`;
  return `${url.tls ? 'rediss' : 'redis'}://${hosts}/${url.db}`;
}
