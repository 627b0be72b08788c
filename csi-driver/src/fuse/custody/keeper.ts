import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isNativeError, keeperPath, native, type KeeperReply } from '../kernel/native.js';

const CALL_TIMEOUT_MS = 2000;
/** The keeper SIGKILLs a command that has not exited 5 s after SIGTERM. */
const RETIRE_TIMEOUT_MS = 12_000;
const NEXT = '.next';
const START_TIMEOUT_MS = 3000;

/** A descriptor the keeper holds, with the payload stored beside it. */
export interface Held {
  fd: number;
  payload: Buffer;
}

/** The keeper's answer was not one of its protocol's (csi-driver/native/keeper.c). */
export class KeeperError extends Error {
  override readonly name = 'KeeperError';
}

/**
 * Client of `lighthouse-bridge-keeper` (ADR 0083): the process that holds each mount's /dev/fuse
 * descriptor while servers come and go. Calls are synchronous and short (the keeper answers from
 * memory), so a takeover needs no event-loop turn between asking and serving.
 */
export class KeeperClient {
  private path: string;

  /** `start` starts a keeper on the socket when none answers there (`ready`); without it, one must run. */
  constructor(
    socket: string,
    private readonly start?: () => Promise<void>,
  ) {
    this.path = socket;
  }

  /**
   * Resolves once a keeper answers, started again if this client may start one: a detached keeper
   * exits once idle (`--idle-exit`), also between the mount's first look and its put. Any request
   * restarts that idle time, so a put right after this finds the keeper there.
   */
  async ready(): Promise<void> {
    if (this.alive()) return;
    if (!this.start) throw new KeeperError(`no keeper answers on ${this.socket}`);
    await this.start();
  }

  /** Where it calls now: a successor's `PATH.next` becomes `PATH` once its predecessor is gone. */
  get socket(): string {
    return this.path;
  }

  put(name: string, fd: number, payload: Buffer): void {
    this.expect(this.call('P', name, payload, [fd]).reply, 'K');
  }

  /**
   * The descriptor held under `name` (a duplicate the caller owns), or undefined. A keeper this
   * client may start again holds nothing while none answers; a given one that does not answer is
   * an error (its owner decides its life).
   */
  get(name: string): Held | undefined {
    const answer = this.start ? this.callIfAlive('G', name) : this.call('G', name);
    if (!answer || answer.reply[0] === 0x4e /* N */) return undefined;
    const { reply, fds } = answer;
    this.expect(reply, 'Y');
    const [fd, ...extra] = fds;
    for (const e of extra) closeSync(e);
    if (fd === undefined) throw new KeeperError(`keeper at ${this.socket} answered ${name} without a descriptor`);
    return { fd, payload: reply.subarray(1) };
  }

  drop(name: string): void {
    this.expect(this.call('D', name).reply, 'K');
  }

  list(): string[] {
    const { reply } = this.call('L', '*');
    return this.names(reply);
  }

  /** True when a keeper answers on the socket and holds `name`. */
  holds(name: string): boolean {
    return this.listIfAlive()?.includes(name) ?? false;
  }

  /**
   * Asks a supervising keeper to stop its command for good (a successor took its descriptors);
   * returns once the command has exited. The descriptors stay held until the keeper exits.
   */
  retire(): void {
    this.expect(native.keeperCall(this.path, Buffer.from('T*\0'), [], RETIRE_TIMEOUT_MS).reply, 'K');
  }

  /** True when a keeper answers on the socket. */
  alive(): boolean {
    return this.listIfAlive() !== undefined;
  }

  /** What the keeper holds; undefined when none answers on the socket. */
  private listIfAlive(): string[] | undefined {
    const answer = this.callIfAlive('L', '*');
    return answer && this.names(answer.reply);
  }

  private names(reply: Buffer): string[] {
    this.expect(reply, 'Y');
    return reply.subarray(1).toString('utf8').split('\0').filter((n) => n !== '');
  }

  private callIfAlive(op: string, name: string): KeeperReply | undefined {
    try {
      return this.call(op, name);
    } catch (error) {
      if (isNoKeeper(error)) return undefined;
      throw error;
    }
  }

  private call(op: string, name: string, payload: Buffer = Buffer.alloc(0), fds: number[] = []) {
    const message = Buffer.concat([Buffer.from(`${op}${name}\0`), payload]);
    try {
      return native.keeperCall(this.path, message, fds, CALL_TIMEOUT_MS);
    } catch (error) {
      // A successor keeper moved from PATH.next to PATH when its predecessor exited.
      if (!this.path.endsWith(NEXT) || !isNoKeeper(error)) throw error;
      this.path = this.path.slice(0, -NEXT.length);
      return native.keeperCall(this.path, message, fds, CALL_TIMEOUT_MS);
    }
  }

  private expect(reply: Buffer, code: string): void {
    if (reply.toString('latin1', 0, 1) !== code) throw new KeeperError(`keeper at ${this.socket}: ${reply.toString('utf8', 1) || 'unexpected answer'}`);
  }
}

/**
 * The keeper on `socket`, started detached when none answers there (now, or at a later `ready`): it
 * outlives this process, and exits by itself once it has held nothing for `idleExitSeconds`. A mount
 * whose server died and was not taken over within `orphanTimeoutSeconds` is ended (ENOTCONN) rather
 * than left hanging.
 */
export async function ensureKeeper(socket: string, idleExitSeconds: number, orphanTimeoutSeconds: number): Promise<KeeperClient> {
  const client: KeeperClient = new KeeperClient(socket, () => startKeeper(client, idleExitSeconds, orphanTimeoutSeconds));
  await client.ready();
  return client;
}

async function startKeeper(client: KeeperClient, idleExitSeconds: number, orphanTimeoutSeconds: number): Promise<void> {
  const socket = client.socket;
  mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    // Its own log: inheriting our stderr would hold open whatever pipe our parent reads to its end.
    const log = openSync(join(dirname(socket), 'keeper.log'), 'a', 0o600);
    let ended: Error | 'exited' | undefined;
    try {
      spawn(keeperPath, ['--socket', socket, '--idle-exit', String(idleExitSeconds), '--orphan-timeout', String(orphanTimeoutSeconds)], { detached: true, stdio: ['ignore', 'ignore', log] })
        .once('exit', () => (ended ??= 'exited'))
        .once('error', (error) => (ended = error))
        .unref();
    } finally {
      closeSync(log);
    }
    // A keeper exiting idle still holds its lock for a moment after its socket is gone: one
    // started then finds the lock taken and exits, and the next try gets the lock.
    while (ended === undefined && Date.now() < deadline) {
      if (client.alive()) return;
      await sleep(10);
    }
    if (ended instanceof Error) throw new KeeperError(`starting ${keeperPath} failed: ${ended.message}`);
    if (client.alive()) return;
  }
  throw new KeeperError(`keeper did not answer on ${socket} within ${START_TIMEOUT_MS} ms`);
}

/**
 * Nothing listens on the socket: no file there, a file left by a keeper that is gone, or a keeper
 * that exited with our connection still queued (closed without a reply).
 */
function isNoKeeper(error: unknown): boolean {
  return isNativeError(error) && ['ENOENT', 'ECONNREFUSED', 'ECONNRESET'].includes(error.code);
}
