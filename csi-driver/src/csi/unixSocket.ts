import { ServerCredentials, type Server } from '@grpc/grpc-js';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { withAcceptableAuthority } from './authority.js';

/** A gRPC server listening on a unix socket file; `close` stops it and removes the file. */
export interface UnixSocketListener {
  close(): Promise<void>;
}

/**
 * Serves `server` on `socketPath`, replacing a socket file a killed process left there. Every
 * socket the kubelet dials goes through here, so each gets the `:authority` fix (ADR 0072).
 */
export async function serveOnUnixSocket(server: Server, socketPath: string): Promise<UnixSocketListener> {
  await removeStaleSocket(socketPath);
  await mkdir(dirname(socketPath), { recursive: true });
  // Our own listener feeding grpc-js, so old kubelets' path-valued :authority can be fixed first.
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const listener = createServer((socket) => injector.injectConnection(withAcceptableAuthority(socket)));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(socketPath, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  return {
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
      await unlink(socketPath).catch(() => undefined);
    },
  };
}

/** A socket file left by a killed plugin makes bind fail with EADDRINUSE. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    const info = await lstat(path);
    if (!info.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
