import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** PEM files of a throwaway CA and one serving certificate it signed, in one directory. */
export interface ServerPki {
  caCert: string;
  serverCert: string;
  serverKey: string;
}

/**
 * A CA (valid 2 days) and a serving certificate for `commonName` with `subjectAltNames`
 * (e.g. `IP:127.0.0.1`, `DNS:localhost`), made with the openssl CLI in `dir`.
 */
export async function makeServerPki(dir: string, commonName: string, subjectAltNames: string[]): Promise<ServerPki> {
  const p = (name: string): string => join(dir, name);
  const ext = p('server.ext');
  await writeFile(ext, `subjectAltName=${subjectAltNames.join(',')}\nextendedKeyUsage=serverAuth\n`);
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=lhb-test-ca']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/CN=${commonName}`]);
  await openssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', ext]);
  return { caCert: p('ca.crt'), serverCert: p('server.crt'), serverKey: p('server.key') };
}

export function openssl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`openssl ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve();
    });
  });
}
