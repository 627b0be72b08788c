import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { makeServerPki } from '@lighthouse-bridge/test/pki';
import { freePort } from '@lighthouse-bridge/test/ports';
import { startRedis, type RedisServer } from '@lighthouse-bridge/test/redis';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import type { ProjectId } from '../events/projectId.js';
import { StoreUnavailableError, StoreUrlError } from '../store/eventStore.js';
import { openStore } from '../store/open.js';
import { projectKeys } from './keys.js';
import { REDIS_CA_FILE_ENV } from './tls.js';

/** Runs `body` with LHB_REDIS_CA_FILE set to `file` (unset for undefined), then restores it. */
async function withCaFile<T>(file: string | undefined, body: () => Promise<T>): Promise<T> {
  const before = process.env[REDIS_CA_FILE_ENV];
  if (file === undefined) delete process.env[REDIS_CA_FILE_ENV];
  else process.env[REDIS_CA_FILE_ENV] = file;
  try {
    return await body();
  } finally {
    if (before === undefined) delete process.env[REDIS_CA_FILE_ENV];
    else process.env[REDIS_CA_FILE_ENV] = before;
  }
}

describe('rediss:// with a private CA (LHB_REDIS_CA_FILE)', () => {
  let redis: RedisServer;
  let url: string;
  let caCert: string;
  let removePki: () => Promise<void>;
  const project: ProjectId = { namespace: 'tls-test', name: `p-${randomBytes(4).toString('hex')}` };

  before(async () => {
    const pkiDir = await tempDir('lhb-redis-pki-');
    removePki = pkiDir.remove;
    const pki = await makeServerPki(pkiDir.dir, 'redis', ['IP:127.0.0.1', 'DNS:localhost']);
    caCert = pki.caCert;
    const tlsPort = await freePort();
    redis = await startRedis({ args: ['--tls-port', String(tlsPort), '--tls-cert-file', pki.serverCert, '--tls-key-file', pki.serverKey, '--tls-ca-cert-file', pki.caCert, '--tls-auth-clients', 'no'] });
    url = `rediss://127.0.0.1:${tlsPort}`;
  });
  after(async () => {
    await redis?.stop();
    await removePki?.();
  });

  it('appends and reads through TLS when the CA file is given', async () => {
    await withCaFile(caCert, async () => {
      const store = await openStore(url);
      try {
        await store.append(project, [{ type: 'AgentSessionStarted', actor: 'tls-test', data: { sessionId: 's1', agent: 'a' } }]);
        assert.deepEqual((await store.read(project)).map((e) => e.type), ['AgentSessionStarted']);
      } finally {
        await store.close();
      }
    });
    // The same server, asked on its plain port, holds the event.
    assert.equal((await redis.cli(['xlen', projectKeys(project).log])).trim(), '1');
  });

  it('refuses the server without the CA (the system CAs do not know it), as an unavailable store', async () => {
    await withCaFile(undefined, async () => {
      await assert.rejects(openStore(url), (error: Error) => error instanceof StoreUnavailableError && /self-signed certificate/.test(error.message));
    });
  });

  it('names the variable and the file when the CA file cannot be read', async () => {
    await withCaFile('/nonexistent/ca.crt', async () => {
      await assert.rejects(
        openStore(url),
        (error: Error) => error instanceof StoreUrlError && error.message.includes(`${REDIS_CA_FILE_ENV}=/nonexistent/ca.crt`) && /ENOENT/.test(error.message),
      );
    });
  });
});
