import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { spawnOwned } from './owned.js';
import { makeServerPki, openssl, type ServerPki } from './pki.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

/** A real kube-apiserver backed by a real etcd, both on 127.0.0.1, owned by this process. */
export interface KubeEnv {
  /** Path of a kubeconfig file whose current context is the admin (group system:masters). */
  readonly kubeconfig: string;
  /** `https://127.0.0.1:PORT` */
  readonly server: string;
  /** The admin's bearer token (also in the kubeconfig). */
  readonly token: string;
  /** PEM of the CA that signed the serving certificate. */
  readonly ca: string;
  /** Kills both processes and removes their directory. Idempotent. */
  stop(): Promise<void>;
}

/** Where test/setup/tools/kube.sh puts the binaries. */
export function kubeToolsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LHB_TOOLS ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'lighthouse-bridge', 'tools');
}

/** True when kube-apiserver and etcd have been built, so tests can skip with a reason otherwise. */
export function kubeToolsAvailable(): boolean {
  const dir = kubeToolsDir();
  try {
    accessSync(join(dir, 'kube-apiserver'), constants.X_OK);
    accessSync(join(dir, 'etcd'), constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 5_000;

export async function startKube(): Promise<KubeEnv> {
  const tools = kubeToolsDir();
  const { dir, remove } = await tempDir('lhb-kube-');
  const children: Launched[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // apiserver first so it does not spin on a vanished etcd
    for (const { child } of children.reverse()) await terminate(child);
    await remove();
  };
  try {
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const pki = await makePki(dir);
    const token = randomBytes(24).toString('hex');
    const tokenFile = join(dir, 'tokens.csv');
    await writeFile(tokenFile, `${token},admin,admin-uid,"system:masters"\n`);

    const etcdUrl = `http://${HOST}:${etcdPort}`;
    children.push(
      launch(join(tools, 'etcd'), [
        '--name', 'default',
        '--data-dir', join(dir, 'etcd'),
        '--listen-client-urls', etcdUrl,
        '--advertise-client-urls', etcdUrl,
        '--listen-peer-urls', `http://${HOST}:${peerPort}`,
        '--initial-advertise-peer-urls', `http://${HOST}:${peerPort}`,
        '--initial-cluster', `default=http://${HOST}:${peerPort}`,
        // A test cluster is thrown away; fsync per write only costs time on a shared 2-core box.
        '--unsafe-no-fsync',
        '--log-level', 'error',
      ], join(dir, 'etcd.log')),
    );

    children.push(
      launch(join(tools, 'kube-apiserver'), [
        '--etcd-servers', etcdUrl,
        '--bind-address', HOST,
        '--advertise-address', HOST,
        '--secure-port', String(apiPort),
        '--cert-dir', join(dir, 'certs'),
        '--tls-cert-file', pki.serverCert,
        '--tls-private-key-file', pki.serverKey,
        '--client-ca-file', pki.caCert,
        '--token-auth-file', tokenFile,
        '--authorization-mode', 'RBAC',
        '--service-account-issuer', 'https://kubernetes.default.svc.cluster.local',
        '--service-account-key-file', pki.saPub,
        '--service-account-signing-key-file', pki.saKey,
        // Only an allocation range for Service IPs; nothing is ever sent there.
        '--service-cluster-ip-range', '10.0.0.0/24',
        '--allow-privileged=true',
        '--disable-admission-plugins', 'ServiceAccount',
        '--enable-priority-and-fairness=false',
        '--profiling=false',
        '--v', '0',
      ], join(dir, 'apiserver.log')),
    );

    const server = `https://${HOST}:${apiPort}`;
    const ca = await readFile(pki.caCert, 'utf8');
    await waitReady(server, token, ca, children, dir);

    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kubeconfigYaml(server, ca, token));
    return { kubeconfig, server, token, ca, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

interface Launched {
  readonly name: string;
  readonly child: ChildProcess;
  /** The last lines it printed, for the failure message when it does not come up. */
  tail(): string;
}

function launch(binary: string, args: string[], logFile: string): Launched {
  const child = spawnOwned(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: string[] = [];
  const keep = (chunk: Buffer): void => {
    chunks.push(chunk.toString('utf8'));
    if (chunks.length > 200) chunks.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => void writeFile(logFile, chunks.join('')).catch(() => undefined));
  return { name: binary.split('/').pop() ?? binary, child, tail: () => chunks.join('').split('\n').slice(-20).join('\n') };
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

async function waitReady(server: string, token: string, ca: string, children: Launched[], dir: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  for (;;) {
    for (const { name, child, tail } of children) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) while starting in ${dir}:\n${tail()}`);
      }
    }
    last = await get(`${server}/readyz`, token, ca).catch((error: Error) => error.message);
    if (last === 'ok') return;
    if (Date.now() > deadline) {
      throw new Error(`kube-apiserver not ready within ${READY_TIMEOUT_MS} ms: ${last}\n${children.map((c) => `${c.name}:\n${c.tail()}`).join('\n---\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function get(url: string, token: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : `HTTP ${res.statusCode}: ${body.slice(0, 500)}`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

interface Pki extends ServerPki {
  saKey: string;
  saPub: string;
}

async function makePki(dir: string): Promise<Pki> {
  const p = (name: string): string => join(dir, name);
  const server = await makeServerPki(dir, 'kube-apiserver', ['IP:127.0.0.1', 'DNS:localhost', 'DNS:kubernetes.default.svc']);
  await openssl(['genrsa', '-out', p('sa.key'), '2048']);
  await openssl(['rsa', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub')]);
  return { ...server, saKey: p('sa.key'), saPub: p('sa.pub') };
}

function kubeconfigYaml(server: string, ca: string, token: string): string {
  // JSON is valid YAML and needs no quoting rules.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } }],
      users: [{ name: 'admin', user: { token } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin', namespace: 'default' } }],
      'current-context': 'test',
    },
    null,
    2,
  );
}
