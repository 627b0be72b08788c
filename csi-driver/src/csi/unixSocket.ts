import { ServerCredentials, type Server } from '@grpc/grpc-js';
import { lstat, mkdir, rename, unlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { withAcceptableAuthority } from './authority.js';

/** A gRPC server listening on a unix socket file; `close` stops it and removes the file. */
export interface UnixSocketListener {
  /** False once another process (a successor plugin) has put its own socket at the path. */
  stillOurs(): Promise<boolean>;
  close(): Promise<void>;
}

/** Longest unix socket path (sun_path less its terminating NUL). */
const SOCKET_PATH_MAX = 107;

/**
 * Serves `server` on `socketPath`, replacing a socket file a killed process left there. Every
 * socket the kubelet dials goes through here, so each gets the `:authority` fix (ADR 0072).
 *
 * The socket is bound under a name of its own and renamed onto `socketPath`, so the path always
 * answers, and so a plugin stopping after its successor took the path over (a DaemonSet rolling
 * with maxSurge) removes nothing of the successor's: libuv unlinks the name it bound on close, and
 * we remove `socketPath` only while it is still our socket.
 */
export async function serveOnUnixSocket(server: Server, socketPath: string): Promise<UnixSocketListener> {
  await refuseNonSocket(socketPath);
  await mkdir(dirname(socketPath), { recursive: true });
  // No longer than the final name where possible, so a path that fits also fits while staged.
  const name = basename(socketPath);
  const staging = join(dirname(socketPath), `.${randomBytes(8).toString('hex').slice(0, Math.max(6, name.length - 1))}`);
  if (Buffer.byteLength(staging) > SOCKET_PATH_MAX) throw new Error(`${socketPath}: too long to bind under a temporary name (at most ${SOCKET_PATH_MAX} bytes)`);
  // Our own listener feeding grpc-js, so old kubelets' path-valued :authority can be fixed first.
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const listener = createServer((socket) => injector.injectConnection(withAcceptableAuthority(socket)));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(staging, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  await rename(staging, socketPath);
  const { ino } = await lstat(socketPath);
  const stillOurs = (): Promise<boolean> => lstat(socketPath).then((info) => info.ino === ino, () => false);
  return {
    stillOurs,
    async close() {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
      injector.drain(2000);
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      injector.destroy();
      if (await stillOurs()) await unlink(socketPath).catch(ignoreMissing);
    },
  };
}

/** A socket file left by a killed plugin is replaced; anything else at the path is not ours. */
async function refuseNonSocket(path: string): Promise<void> {
  const info = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (info && !info.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}
