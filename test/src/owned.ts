import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { Socket } from 'node:net';

/**
 * Servers the test helpers start (redis-server, etcd, kube-apiserver) are owned by this process:
 * a test that fails or forgets `stop()` must not leave one behind. Every live one is SIGKILLed
 * (and the registered cleanups run) when this process exits or gets SIGINT/SIGTERM/SIGHUP, and
 * where `setpriv` exists the kernel kills them even when this process itself is SIGKILLed
 * (parent-death signal).
 *
 * They never keep this process alive either: a test file whose `before` failed half-way (one
 * server up, the next refused) ends, and its leftover servers with it, instead of waiting on them
 * until CI's deadline.
 */
const live = new Set<ChildProcess>();
const cleanups: Array<() => void> = [];
let exitHookInstalled = false;

function killAllNow(): void {
  for (const child of live) child.kill('SIGKILL');
  for (const cleanup of cleanups) cleanup();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllNow();
      // Re-raise only when nobody else handles it, so we never swallow or pre-empt someone's
      // graceful shutdown.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

/** Spawns `binary` as an owned child (see above). */
export function spawnOwned(binary: string, args: string[], options: SpawnOptions): ChildProcess {
  installExitHook();
  const [command, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, args];
  const child = spawn(command, argv, options);
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) if (stream instanceof Socket) stream.unref();
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

/**
 * Runs `cleanup` (synchronously) after the owned children are killed, when this process exits or
 * is signalled. Registering installs no hook: it is installed with the first `spawnOwned`.
 */
export function atExit(cleanup: () => void): void {
  cleanups.push(cleanup);
}
