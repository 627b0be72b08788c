/**
 * The built CLI's `mount` as the benchmarks run it: a child process that prints one line on stdout
 * once the filesystem is ready, and unmounts on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'dist', 'main.js');

/** Starts `lighthouse-bridge mount ...args`; resolves with the child once it reports ready, rejects after 20 s. */
export function mountCli(args, cwd, children) {
  const child = spawn(process.execPath, [CLI, 'mount', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mount not ready in 20 s: ${err}`)), 20_000);
    child.stdout.once('data', () => {
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`mount exited ${code}: ${err}`)));
  });
}

/** SIGTERM (which unmounts), SIGKILL after 10 s; resolves once it is gone. */
export function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
