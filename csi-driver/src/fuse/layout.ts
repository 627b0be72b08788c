/**
 * The filesystem's layout (README "A quick tour") as data: every FUSE path maps to exactly one `Location`, so
 * the operations switch on a tag instead of re-parsing strings, and the contract lives in one place.
 */

import { parseRfc3339 } from '@lighthouse-bridge/core';

export type HistoryRef = { seq: number } | { time: Date; name: string };

export type Location =
  | { view: 'root' }
  | { view: 'current'; path: string }
  | { view: 'historyDir' }
  | { view: 'historyLog' }
  | { view: 'history'; at: HistoryRef; path: string }
  | { view: 'shadows'; path: string }
  | { view: 'context'; path: string }
  | { view: 'streamsDir' }
  | { view: 'streamEvents' }
  | { view: 'bridgeDir' }
  | { view: 'bridgeStatus' }
  | { view: 'bridgeValidate' }
  | { view: 'missing' };

/** The locations one view answers for, by tag. */
export type At<V extends Location['view']> = Extract<Location, { view: V }>;

export const ROOT_ENTRIES = ['current', 'history', 'shadows', 'context', 'streams', '.bridge'] as const;
export const STREAM_ENTRIES = ['events'] as const;
export const BRIDGE_ENTRIES = ['status', 'validate'] as const;
export const HISTORY_LOG = 'log';

const ROOT: Location = { view: 'root' };
const MISSING: Location = { view: 'missing' };
const HISTORY_DIR: Location = { view: 'historyDir' };
const HISTORY_LOG_LOCATION: Location = { view: 'historyLog' };
const STREAMS_DIR: Location = { view: 'streamsDir' };
const STREAM_EVENTS: Location = { view: 'streamEvents' };
const BRIDGE_DIR: Location = { view: 'bridgeDir' };
const BRIDGE_STATUS: Location = { view: 'bridgeStatus' };
const BRIDGE_VALIDATE: Location = { view: 'bridgeValidate' };

const SEQ_NAME = /^@(0|[1-9]\d{0,15})$/;

/** `/current/a/b` → `{view:'current', path:'a/b'}`. FUSE paths are absolute and never end in `/`. */
export function locate(fusePath: string): Location {
  if (fusePath === '/') return ROOT;
  const slash = fusePath.indexOf('/', 1);
  const top = slash < 0 ? fusePath.slice(1) : fusePath.slice(1, slash);
  const rest = slash < 0 ? '' : fusePath.slice(slash + 1);
  switch (top) {
    case 'current':
      return { view: 'current', path: rest };
    case 'history':
      return locateHistory(rest);
    case 'shadows':
      return { view: 'shadows', path: rest };
    case 'context':
      return { view: 'context', path: rest };
    case 'streams':
      if (rest === '') return STREAMS_DIR;
      return rest === 'events' ? STREAM_EVENTS : MISSING;
    case '.bridge':
      if (rest === '') return BRIDGE_DIR;
      if (rest === 'status') return BRIDGE_STATUS;
      return rest === 'validate' ? BRIDGE_VALIDATE : MISSING;
    default:
      return MISSING;
  }
}

function locateHistory(rest: string): Location {
  if (rest === '') return HISTORY_DIR;
  if (rest === HISTORY_LOG) return HISTORY_LOG_LOCATION;
  const slash = rest.indexOf('/');
  const name = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  const at = parseHistoryName(name);
  return at ? { view: 'history', at, path } : MISSING;
}

/** `@<seq>` or an RFC 3339 instant that exists; anything else is not a history view. */
function parseHistoryName(name: string): HistoryRef | undefined {
  const seq = SEQ_NAME.exec(name);
  if (seq) return { seq: Number(seq[1]) };
  const time = parseRfc3339(name);
  return time ? { time, name } : undefined;
}

/** True for views nobody may change through this mount, whatever its mode. */
export function isImmutable(location: Location): boolean {
  switch (location.view) {
    case 'current':
    case 'shadows':
    case 'bridgeValidate':
      return false;
    default:
      return true;
  }
}
