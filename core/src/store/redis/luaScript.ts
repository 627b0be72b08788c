import { createHash } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../../redis/client.js';

/** One command's outcome in a pipeline's reply, as ioredis gives it. */
export type PipelineReply = [error: Error | null, result: unknown];

/**
 * A Lua script run by its SHA1 in a pipeline, so each call sends only the arguments; the source is
 * sent once per server (again after a restart or on another Cluster node, which answer NOSCRIPT).
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Adds a call by SHA1 to `pipeline`; `settle` turns its reply into the script's result. */
  queue(pipeline: ChainableCommander, keys: string[], args: Array<string | Buffer>): void {
    pipeline.evalsha(this.sha, keys.length, ...keys, ...args);
  }

  /** The result of a call added with `queue`: its reply, or on NOSCRIPT the script's source sent now. */
  async settle(client: RedisClient, reply: PipelineReply | undefined, keys: string[], args: Array<string | Buffer>): Promise<unknown> {
    const [error, result] = reply ?? [new Error('the pipeline brought no reply to the script call'), undefined];
    if (!error) return result;
    if (!error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(this.source, keys.length, ...keys, ...args);
  }
}
