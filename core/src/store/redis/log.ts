import type { NewEvent, RecordedEvent } from '../../events/events.js';
import { LuaScript } from './luaScript.js';

/*
 * One event is one stream entry with id `<seq>-0` and four fields, so `redis-cli XRANGE` shows the
 * log as it is (docs/adr/0020-redis-store-layout.md):
 *   type   the event type, e.g. FileWritten
 *   actor  who caused it
 *   ms     store time, milliseconds since the epoch (Redis TIME, never less than the previous entry's)
 *   data   the event's data as JSON
 * The id's sequence part makes `XRANGE log FROM TO` and `XREAD ... STREAMS log AFTER` address events
 * by sequence number directly, with no lookup table.
 */

/** Result tag: the head did not match the expected version. */
const CONFLICT = 0;

/**
 * KEYS[1] = log; ARGV[1] = expected head or -1 for any; then type, actor, data per event.
 * Returns {1, headBefore, ms} or {0, actualHead}. Atomic: a script runs alone on its server, and
 * one project's keys are one slot, so the check and all XADDs see no other writer in between.
 */
export const appendScript = new LuaScript(`
local log = KEYS[1]
local expected = tonumber(ARGV[1])
local head, lastMs = 0, 0
local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
if last then
  head = tonumber(string.match(last[1], '^(%d+)'))
  local fields = last[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'ms' then lastMs = tonumber(fields[i + 1]) end
  end
end
if expected >= 0 and expected ~= head then return {${CONFLICT}, head} end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if ms < lastMs then ms = lastMs end
local msText = string.format('%.0f', ms)
for i = 2, #ARGV, 3 do
  head = head + 1
  redis.call('XADD', log, string.format('%.0f-0', head), 'type', ARGV[i], 'actor', ARGV[i + 1], 'ms', msText, 'data', ARGV[i + 2])
end
return {1, head - (#ARGV - 1) / 3, msText}
`);

export type AppendOutcome = { ok: true; headBefore: number; ms: number } | { ok: false; head: number };

export function appendArgs(events: readonly NewEvent[], expectedVersion: number | undefined): string[] {
  const args = [String(expectedVersion ?? -1)];
  for (const e of events) args.push(e.type, e.actor, JSON.stringify(e.data));
  return args;
}

export function parseAppendReply(reply: unknown): AppendOutcome {
  if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') {
    throw new Error(`unexpected reply from the append script: ${JSON.stringify(reply)}`);
  }
  if (reply[0] === CONFLICT) return { ok: false, head: reply[1] };
  return { ok: true, headBefore: reply[1], ms: Number(reply[2]) };
}

export function recorded(events: readonly NewEvent[], headBefore: number, ms: number): RecordedEvent[] {
  const time = new Date(ms).toISOString();
  return events.map((e, i) => ({ ...e, seq: headBefore + 1 + i, time }));
}

export function entryId(seq: number): string {
  return `${seq}-0`;
}

export function seqOfEntryId(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** A stream entry as ioredis returns it: `[id, [field, value, ...]]`. */
export type StreamEntry = [id: string, fields: string[]];

export function decodeEntry([id, fields]: StreamEntry): RecordedEvent {
  let type = '';
  let actor = '';
  let ms = 0;
  let data = '{}';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1] ?? '';
    switch (fields[i]) {
      case 'type':
        type = value;
        break;
      case 'actor':
        actor = value;
        break;
      case 'ms':
        ms = Number(value);
        break;
      case 'data':
        data = value;
        break;
    }
  }
  // Unknown event types pass through untouched: readers ignore what they do not know (events.ts).
  return { type, actor, data: JSON.parse(data), seq: seqOfEntryId(id), time: new Date(ms).toISOString() } as RecordedEvent;
}
