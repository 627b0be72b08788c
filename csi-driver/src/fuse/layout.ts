/**
 * The filesystem's layout (DESIGN §4) as data: every FUSE path maps to exactly one `Location`, so
 * the operations switch on a tag instead of re-parsing strings, and the contract lives in one place.
 */

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
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;

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

/** `@<seq>` or an RFC 3339 instant; anything else is not a history view. */
function parseHistoryName(name: string): HistoryRef | undefined {
  const seq = SEQ_NAME.exec(name);
  if (seq) return { seq: Number(seq[1]) };
  if (!isRealInstant(name)) return undefined;
  const ms = Date.parse(name);
  return Number.isFinite(ms) ? { time: new Date(ms), name } : undefined;
}

/**
 * An RFC 3339 instant that exists: Date.parse rolls 02-30 over to March and 24:00 to the next day,
 * so a view name would not be the instant it shows. Leap seconds (:60) are refused too, since no
 * event time can be one.
 */
function isRealInstant(name: string): boolean {
  const m = RFC3339.exec(name);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (days === undefined || day < 1 || day > days || hour > 23 || minute > 59 || second > 59) return false;
  return m[7] === undefined || (Number(m[7]) <= 23 && Number(m[8]) <= 59);
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
