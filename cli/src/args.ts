/**
 * What the store commands (put, cat, ls, rm, mv, mkdir, log) share: the common flags, `--at`
 * parsing, opening the store and project, and the ONE place where errors become exit codes.
 */
import { userInfo } from 'node:os';
import {
  ConcurrencyError,
  DomainError,
  InvalidProjectIdError,
  openStore,
  parseProjectId,
  parseRfc3339,
  ProjectWorkspace,
  seqAt,
  StoreForbiddenError,
  StoreUnavailableError,
  StoreUrlError,
  storeUrlFrom,
  type EventStore,
  type ProjectId,
} from '@lighthouse-bridge/core';
import { EXIT, UsageError } from './command.js';

/** Flags every store command takes, in `node:util` parseArgs form. */
export const STORE_FLAGS = {
  store: { type: 'string' },
  actor: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const STORE_FLAGS_USAGE = `  --store URL    file://DIR, redis://HOST:PORT[/DB], redis+cluster://H:P,... (default: $LHB_STORE, else file://./.lighthouse-bridge)`;

/**
 * Runs a command body and maps what it throws to an exit status and one line on stderr:
 * 2 for usage (bad flags, project id, store URL, --at), 1 for refusals and conflicts,
 * 3 when the store cannot be reached, 1 for anything unexpected.
 */
export async function runCommand(name: string, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    const say = (message: string): void => {
      process.stderr.write(`lighthouse-bridge ${name}: ${message}\n`);
    };
    if (error instanceof UsageError || error instanceof InvalidProjectIdError || error instanceof StoreUrlError || isParseArgsError(error)) {
      say(`${(error as Error).message}\n\n${usage}`);
      return EXIT.usage;
    }
    if (error instanceof DomainError) {
      say(`${error.code}: ${error.message}`);
      return EXIT.refused;
    }
    if (error instanceof ConcurrencyError) {
      say(`conflict: ${error.message}`);
      return EXIT.refused;
    }
    if (error instanceof StoreForbiddenError) {
      say(`refused: ${error.message}`);
      return EXIT.refused;
    }
    if (error instanceof StoreUnavailableError) {
      say(`store unavailable: ${error.message}`);
      return EXIT.storeUnreachable;
    }
    say(error instanceof Error ? error.message : String(error));
    return EXIT.error;
  }
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/** Exactly `names.length` positionals (optionally fewer, down to `required`), else UsageError. */
/** The Redis URL of the commands that serve every project (`--redis`, else LHB_REDIS_URL); required. */
export function redisUrlFlag(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const url = flag ?? env['LHB_REDIS_URL'];
  if (!url) throw new UsageError('--redis URL is required');
  return url;
}

/** `export --to FILE` writes FILE plus this while it runs and renames it once complete. */
export const PARTIAL_SUFFIX = '.partial';

export function positionals(given: string[], names: string[], required = names.length): string[] {
  if (given.length < required) throw new UsageError(`missing ${names.slice(given.length, required).join(' ')}`);
  if (given.length > names.length) throw new UsageError(`unexpected argument "${given[names.length]}"`);
  return given;
}

export function projectArg(text: string): ProjectId {
  return parseProjectId(text);
}

/** `--actor`, else `LHB_ACTOR`, else `cli:$USER`. */
export function actorFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== '') return flag;
  if (env['LHB_ACTOR']) return env['LHB_ACTOR'];
  let user = env['USER'];
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return `cli:${user}`;
}

/** Opens the store named by `--store`/`LHB_STORE`/default, runs `fn`, and always closes it. */
export async function withStore<T>(flag: string | undefined, readOnly: boolean, fn: (store: EventStore) => Promise<T>): Promise<T> {
  const store = await openStore(storeUrlFrom(flag), { readOnly });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * A writable workspace on the project for one command. It does not follow the tail: a CLI command
 * decides on the state it just loaded, and a concurrent writer shows up as a conflict that the
 * workspace resolves by catching up and deciding again.
 */
export async function withWorkspace<T>(flags: { store?: string | undefined; actor?: string | undefined }, project: ProjectId, fn: (workspace: ProjectWorkspace) => Promise<T>): Promise<T> {
  const actor = actorFrom(flags.actor);
  return withStore(flags.store, false, async (store) => {
    const workspace = await ProjectWorkspace.open({ store, project, actor, live: false });
    try {
      return await fn(workspace);
    } finally {
      await workspace.close();
    }
  });
}

export type At = { seq: number } | { time: Date };

/** `--at SEQ` or `--at RFC3339` (with a zone: a bare local time would mean different instants on different machines). */
export function parseAt(text: string): At {
  if (/^\d+$/.test(text)) {
    const seq = Number(text);
    if (Number.isSafeInteger(seq)) return { seq };
  }
  const time = parseRfc3339(text);
  if (time) return { time };
  throw new UsageError(`--at "${text}" is neither a sequence number nor an RFC 3339 time such as 2026-11-26T10:00:00Z`);
}

/** The sequence an `--at` names, or the head without one. Past the head is a refusal, not a usage error. */
export async function resolveAt(store: EventStore, project: ProjectId, at: At | undefined): Promise<number> {
  const head = await store.head(project);
  if (at === undefined) return head;
  if ('time' in at) return seqAt(store, project, at.time, head);
  if (at.seq > head) throw new DomainError('ENOENT', `the project has ${head} events; there is no event ${at.seq}`);
  return at.seq;
}

export function parseSeqFlag(text: string, flag: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`${flag} expects a sequence number, got "${text}"`);
  return Number(text);
}

/** A TCP port flag: 0 (any free port) to 65535. */
export function parsePortFlag(text: string, flag: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new UsageError(`${flag} expects a port number 0-65535, got "${text}"`);
  return port;
}

/** Writes to stdout and resolves once it is flushed (so big `cat`s are not cut off at exit). */
export function writeOut(data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (error) => (error ? reject(error) : resolve()));
  });
}
