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

/**
 * Appends several independent appends to one log, in order, each all-or-nothing against its own
 * expected version. KEYS[1] = log; ARGV[1] = the floor: the highest head the caller has seen, below
 * which the log has lost events, so the script writes nothing and answers the error
 * `LOGREGRESSED <head>`. Then per append: expected head (-1 = any), the time to record in ms (-1 =
 * Redis TIME; given by an import), event count n, blob count k, the KEYS index of each of its k
 * blobs, then type, actor, data per event. Returns {r1, ms1, r2, ms2, ...}: r = the head before
 * that append when it was written, or -1 - head when it was not (nothing of it written): ms = 0
 * when its expected version did not match, 'blob' when one of its blobs is not stored (the HSET
 * sent just before it failed); else ms = the time it was recorded with.
 * Atomic: a script runs alone on its server and one project's keys are one slot, so no writer
 * comes between a check and its XADDs. One TIME and one look at the head serve the whole batch.
 */
export const appendScript = new LuaScript(`
local log = KEYS[1]
local head, lastMs = 0, 0
local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
if last then
  head = tonumber(string.match(last[1], '^(%d+)'))
  local fields = last[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'ms' then lastMs = tonumber(fields[i + 1]) end
  end
end
if head < tonumber(ARGV[1]) then
  return redis.error_reply(string.format('LOGREGRESSED %.0f', head))
end
local now = redis.call('TIME')
local clock = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local out = {}
local i = 2
while i <= #ARGV do
  local expected = tonumber(ARGV[i])
  local ms = tonumber(ARGV[i + 1])
  local n = tonumber(ARGV[i + 2])
  local k = tonumber(ARGV[i + 3])
  local stored = true
  for j = i + 4, i + 3 + k do
    if redis.pcall('HEXISTS', KEYS[tonumber(ARGV[j])], 'size') ~= 1 then stored = false end
  end
  i = i + 4 + k
  if ms < 0 then ms = clock end
  if ms < lastMs then ms = lastMs end
  local msText = string.format('%.0f', ms)
  if not stored then
    out[#out + 1] = -1 - head
    out[#out + 1] = 'blob'
  elseif expected >= 0 and expected ~= head then
    out[#out + 1] = -1 - head
    out[#out + 1] = 0
  else
    out[#out + 1] = head
    out[#out + 1] = msText
    lastMs = ms
    for b = i, i + (n - 1) * 3, 3 do
      head = head + 1
      redis.call('XADD', log, string.format('%.0f-0', head), 'type', ARGV[b], 'actor', ARGV[b + 1], 'ms', msText, 'data', ARGV[b + 2])
    end
  end
  i = i + n * 3
end
return out
`);

export interface AppendRequest {
  events: readonly NewEvent[];
  expectedVersion: number | undefined;
  /** The time to record instead of Redis TIME (see `AppendOptions.time`). */
  timeMs: number | undefined;
  /** Blobs of one chunk to store with the append, sent just before the script that checks them. */
  blobs: readonly BlobWrite[];
}

export interface BlobWrite {
  key: string;
  content: Buffer;
}

export type AppendOutcome = { ok: true; headBefore: number; ms: number } | { ok: false; head: number; blobMissing: boolean };

/**
 * One append for the script: its arguments once its blobs' keys are placed at KEYS[firstBlobKey]
 * onward (known only when its batch is put together), and how many bytes it carries, event data
 * and blobs. The events are encoded once, here.
 */
export function encodeAppend(request: AppendRequest): { args(firstBlobKey: number): string[]; bytes: number } {
  const events: string[] = [];
  let bytes = 0;
  for (const e of request.events) {
    const data = JSON.stringify(e.data);
    bytes += data.length + e.type.length + e.actor.length;
    events.push(e.type, e.actor, data);
  }
  for (const blob of request.blobs) bytes += blob.content.length;
  const head = [String(request.expectedVersion ?? -1), String(request.timeMs ?? -1), String(request.events.length), String(request.blobs.length)];
  return { args: (first) => [...head, ...request.blobs.map((_, k) => String(first + k)), ...events], bytes };
}

/** The head the append script found below its floor, from its `LOGREGRESSED <head>` error; undefined for other errors. */
export function regressedHead(error: unknown): number | undefined {
  const match = error instanceof Error ? /^LOGREGRESSED (\d+)$/.exec(error.message) : null;
  return match ? Number(match[1]) : undefined;
}

export function parseAppendReply(reply: unknown, appends: number): AppendOutcome[] {
  if (!Array.isArray(reply) || reply.length !== appends * 2 || !reply.every((r, i) => (i % 2 === 0 ? typeof r === 'number' : true))) {
    throw new Error(`unexpected reply from the append script: ${JSON.stringify(reply)?.slice(0, 200)}`);
  }
  return Array.from({ length: appends }, (_, k): AppendOutcome => {
    const r = reply[2 * k] as number;
    return r >= 0 ? { ok: true, headBefore: r, ms: Number(reply[2 * k + 1]) } : { ok: false, head: -1 - r, blobMissing: reply[2 * k + 1] === 'blob' };
  });
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
