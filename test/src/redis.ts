import { execFile, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { atExit, spawnOwned } from './owned.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

/** A real `redis-server` on 127.0.0.1, owned by this process. */
export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  /** Its working directory (RDB/AOF files, `nodes.conf`, `redis.log`). */
  readonly dir: string;
  /** The ACL file given with `--aclfile`, when started with `aclFile: true`. */
  readonly aclFile: string | undefined;
  /** SIGTERM (SIGKILL after 5 s) and removes its directory. Idempotent; final. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would; the directory stays so `restart()` can bring it back. */
  kill(): Promise<void>;
  /** Stops it if running and starts it again on the same port with the same directory. */
  restart(): Promise<void>;
  /** Runs `redis-cli -h 127.0.0.1 -p PORT ...args` and resolves with its stdout. */
  cli(args: string[]): Promise<string>;
}

export interface RedisCluster {
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...` */
  readonly url: string;
  readonly nodes: RedisServer[];
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /**
   * Start with `--aclfile` pointing at a file in its directory that holds only an all-powerful
   * `default` user without password, so a test can `ACL SETUSER` and `ACL SAVE`/`ACL LOAD`.
   */
  aclFile?: boolean;
  /** Extra `redis-server` arguments, e.g. `['--appendonly', 'yes']`. They win over the defaults. */
  args?: string[];
  /** A config file given first, as a server started from a redis.conf is; the arguments win over it. */
  configFile?: string;
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const CLI_TIMEOUT_MS = 15_000;
const CLUSTER_READY_TIMEOUT_MS = 30_000;

/** Data directories not yet removed: removed when this process exits, like the servers are killed (owned.ts). */
const dirs = new Set<string>();
atExit(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

export function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  return retryingPortClash(() => startRedisOnce(options));
}

/**
 * A free port can still be taken between our check and the server's bind (by anything on the
 * machine): that one failure is retried on other ports, twice; any other failure is not.
 */
async function retryingPortClash<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      if (attempt === 3 || !String(error).includes('Address already in use')) throw error;
    }
  }
}

async function startRedisOnce(options: StartRedisOptions): Promise<RedisServer> {
  const { dir, remove: removeDir } = await tempDir('lhb-redis-');
  dirs.add(dir);
  const remove = async (): Promise<void> => {
    await removeDir();
    dirs.delete(dir);
  };
  try {
    const port = await freePort();
    let aclFile: string | undefined;
    if (options.aclFile) {
      aclFile = join(dir, 'users.acl');
      await writeFile(aclFile, 'user default on nopass ~* &* +@all\n');
    }
    const args = [
      ...(options.configFile ? [options.configFile] : []),
      '--port', String(port),
      '--bind', HOST,
      '--dir', dir,
      '--save', '',
      '--appendonly', 'no',
      '--logfile', join(dir, 'redis.log'),
      '--daemonize', 'no',
      ...(aclFile ? ['--aclfile', aclFile] : []),
      ...(options.args ?? []),
    ];
    const server = new ManagedServer(port, dir, aclFile, args, remove);
    await server.start();
    return server;
  } catch (error) {
    await remove();
    throw error;
  }
}

class ManagedServer implements RedisServer {
  readonly host = HOST;
  readonly url: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly aclFile: string | undefined,
    private readonly args: string[],
    private readonly removeDir: () => Promise<void>,
  ) {
    this.url = `redis://${HOST}:${port}`;
  }

  async start(): Promise<void> {
    if (this.stopped) throw new Error(`redis-server on port ${this.port} was stopped for good`);
    const child = spawnOwned('redis-server', this.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    this.child = child;
    let exitCode: string | undefined;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        exitCode = signal ?? String(code);
        resolve();
      });
      child.once('error', (error) => {
        exitCode = error.message;
        resolve();
      });
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exitCode !== undefined) {
        throw new Error(`redis-server on port ${this.port} exited (${exitCode}) while starting: ${stderr.trim()}\n${await this.logTail()}`);
      }
      // Whatever answers must be this server: a port taken meanwhile by someone else's listener
      // answers too, while ours is about to exit on "Address already in use".
      if ((await answersPing(this.port)) && listensOn(child.pid, this.port)) return;
      if (Date.now() > deadline) {
        await this.terminate('SIGKILL');
        throw new Error(`redis-server on port ${this.port} did not answer PING within ${START_TIMEOUT_MS} ms\n${await this.logTail()}`);
      }
      await sleep(25);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.terminate('SIGTERM');
    await this.removeDir();
  }

  kill(): Promise<void> {
    return this.terminate('SIGKILL');
  }

  async restart(): Promise<void> {
    await this.terminate('SIGTERM');
    await this.start();
  }

  cli(args: string[]): Promise<string> {
    return runCli(['-h', HOST, '-p', String(this.port), ...args]);
  }

  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private async logTail(): Promise<string> {
    const log = await readFile(join(this.dir, 'redis.log'), 'utf8').catch(() => '');
    return log.split('\n').slice(-15).join('\n');
  }
}

/**
 * Starts `primaries` empty cluster-enabled servers, joins them with `redis-cli --cluster create`
 * (no replicas) and waits until every node reports `cluster_state:ok` and knows all of them.
 * `options.args` go to every node (e.g. `['--appendonly', 'yes']` to survive `kill()`+`restart()`).
 */
export async function startRedisCluster(primaries = 3, options: { args?: string[] } = {}): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < primaries; i++) {
      nodes.push(
        await retryingPortClash(async () =>
          startRedisOnce({
            args: [
              '--cluster-enabled', 'yes',
              '--cluster-config-file', 'nodes.conf',
              // The bus port would default to port+10000, which may be taken or beyond 65535.
              '--cluster-port', String(await freePort()),
              '--cluster-node-timeout', '5000',
              ...(options.args ?? []),
            ],
          }),
        ),
      );
    }
    const addresses = nodes.map((n) => `${n.host}:${n.port}`);
    await runCli(['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
    const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
    for (const node of nodes) {
      for (;;) {
        const info = await node.cli(['cluster', 'info']);
        const known = Number(/cluster_known_nodes:(\d+)/.exec(info)?.[1] ?? 0);
        if (info.includes('cluster_state:ok') && known === primaries) break;
        if (Date.now() > deadline) throw new Error(`Redis Cluster on ${addresses.join(',')} not ready within ${CLUSTER_READY_TIMEOUT_MS} ms:\n${info}`);
        await sleep(50);
      }
    }
    return { url: `redis+cluster://${addresses.join(',')}`, nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function runCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: CLI_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** True when process `pid` holds the socket listening on 127.0.0.1:`port` (/proc/net/tcp, then its descriptors). */
function listensOn(pid: number | undefined, port: number): boolean {
  if (pid === undefined) return false;
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // local_address, rem_address, st (0A: LISTEN), ..., inode
    if (fields[1] === local && fields[3] === '0A' && fields[9]) inodes.add(fields[9]);
  }
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** True once the server answers (even with an auth error), false while refusing or still loading. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(!reply.startsWith('-LOADING'));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
