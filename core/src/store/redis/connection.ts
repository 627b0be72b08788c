import { clientOptions, createRedisClient, type RedisClient } from '../../redis/client.js';
import { describeLocation, type RedisUrl } from '../../redis/url.js';
import { ConcurrencyError, StoreForbiddenError, StoreUnavailableError } from '../eventStore.js';

const OPEN_TIMEOUT_MS = 3_000;

/** A connected client, or `StoreUnavailableError` within a few seconds. */
export async function openStoreClient(url: RedisUrl, role: 'commands' | 'tail'): Promise<RedisClient> {
  // Errors surface through the rejected commands. The socket's own error (ECONNREFUSED,
  // WRONGPASS) says more than connect()'s "Connection is closed".
  let socketError: unknown;
  const client = createRedisClient(url, clientOptions.store(role), (error) => (socketError ??= error));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      // Without the ready check, connect() resolves before AUTH is answered; PING proves both.
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    throw unavailable(url, 'connect', socketError ?? error);
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** The one place Redis and network errors become store errors. */
export function unavailable(url: RedisUrl, what: string, error: unknown): Error {
  if (error instanceof ConcurrencyError || error instanceof StoreUnavailableError) return error;
  const message = error instanceof Error ? error.message : String(error);
  // A project's own credentials only read (ADR 0062); say so rather than leave a bare NOPERM.
  if (/\bNOPERM\b/.test(message)) {
    return new StoreForbiddenError(`Redis ${describeLocation(url)}: ${what} refused: ${message} (these credentials may not do this; a project's own credentials are read-only: write through a mount)`, { cause: error });
  }
  return new StoreUnavailableError(`Redis ${describeLocation(url)}: ${what} failed: ${message}`, { cause: error });
}

/**
 * The code (`WRONGPASS`, `NOPERM`, ...) of the Redis reply error behind `error`, also when it is
 * wrapped by `unavailable` (as connect failures are): the wrapped message starts with the location.
 */
export function replyCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 4; current = current.cause, depth++) {
    if (current.name === 'ReplyError') return /^[A-Z]+/.exec(current.message)?.[0];
  }
  return undefined;
}
