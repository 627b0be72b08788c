import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomInt } from 'node:crypto';

/**
 * Ports are picked below the kernel's ephemeral range: a port the kernel picked for bind(0) is
 * free only until the next outgoing connection (a client's, a cluster bus's) takes it as its
 * local port, and a server started a moment later then fails with EADDRINUSE. Within this
 * process no port is handed out twice.
 */
const EPHEMERAL_LOW = ((): number => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768;
  }
})();
const LOWEST = 10_000;
const handedOut = new Set<number>();

/** A TCP port on 127.0.0.1 that was free a moment ago, outside the ephemeral range where it has room. */
export async function freePort(): Promise<number> {
  const highest = EPHEMERAL_LOW - 1;
  if (highest - LOWEST >= 1000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = randomInt(LOWEST, highest + 1);
      if (handedOut.has(port)) continue;
      // Reserved before the check, so a concurrent call cannot draw it meanwhile.
      handedOut.add(port);
      if ((await bindTo(port).catch(() => 0)) === port) return port;
      handedOut.delete(port);
    }
  }
  const port = await bindTo(0);
  handedOut.add(port);
  return port;
}

/** Binds 127.0.0.1:port (0: the kernel picks), closes it again and resolves with the port. */
function bindTo(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(bound));
    });
  });
}
