import { createHash } from 'node:crypto';
import type { RedisClient } from '../../redis/client.js';

/**
 * A Lua script run by its SHA1, so each call sends only the arguments; the source is
 * sent once per server (again after a restart or on another Cluster node, which answer NOSCRIPT).
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script by SHA1; on NOSCRIPT (a restarted server, another Cluster node) sends its source. */
  async run(client: RedisClient, keys: string[], args: Array<string | Buffer>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
