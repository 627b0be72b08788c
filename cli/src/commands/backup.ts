import { spawn } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectKube, loadKubeConfig, resourcePath, type BridgeProject } from '@lighthouse-bridge/operator';
import { PARTIAL_SUFFIX, redisUrlFlag, runCommand, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

const USAGE = `usage: lighthouse-bridge backup --to DIR --keep N [options]
Exports every BridgeProject to DIR/NAMESPACE/NAME/TIMESTAMP.lhb and keeps the newest N archives of
each (the chart's backup CronJob). Kubernetes credentials come from the pod (in-cluster),
KUBECONFIG, or ~/.kube/config. Every project is tried; the run fails (exit 1, or 3 when the store
was unreachable) if any one failed.

  --to DIR                where archives go (a mounted PersistentVolumeClaim)
  --keep N                archives kept per project, N >= 1
  --redis URL             Redis holding the projects (default: LHB_REDIS_URL)
  --namespace NS          back up the projects of NS only (default: all namespaces)
  --kubeconfig FILE       use this kubeconfig instead of the defaults`;

/** Sorts by time as text. */
const ARCHIVE = /^\d{8}T\d{6}Z\.lhb$/;

export function run(argv: string[]): Promise<number> {
  return runCommand('backup', USAGE, () => backup(argv));
}

async function backup(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      to: { type: 'string' },
      keep: { type: 'string' },
      redis: { type: 'string' },
      namespace: { type: 'string' },
      kubeconfig: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    await writeOut(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (!values.to) throw new UsageError('--to DIR is required');
  const keep = Number(values.keep);
  if (!(Number.isInteger(keep) && keep >= 1)) throw new UsageError('--keep needs a whole number of at least 1');
  const redisUrl = redisUrlFlag(values.redis);

  const kube = await connectKube(loadKubeConfig(values.kubeconfig));
  const list = await kube.get<{ items: BridgeProject[] }>(resourcePath(values.namespace));
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  let worst: number = EXIT.ok;
  for (const bp of list.items) {
    const project = `${bp.metadata.namespace}/${bp.metadata.name}`;
    const code = await backupOne(values.to, project, stamp, keep, redisUrl);
    // One project's failure fails the run, after every other project had its turn.
    if (code !== EXIT.ok) worst = code === EXIT.storeUnreachable || worst === EXIT.storeUnreachable ? EXIT.storeUnreachable : EXIT.error;
  }
  await writeOut(`${list.items.length} projects, ${worst === EXIT.ok ? 'all backed up' : 'some failed'}\n`);
  return worst;
}

async function backupOne(root: string, project: string, stamp: string, keep: number, redisUrl: string): Promise<number> {
  const dir = join(root, project);
  const file = join(dir, `${stamp}.lhb`);
  await mkdir(dir, { recursive: true });
  // Leftovers of a run that was killed; the CronJob forbids overlapping runs, so none is being written.
  await removeAll(dir, (name) => name.endsWith(PARTIAL_SUFFIX));
  const code = await exportTo(project, file, redisUrl);
  if (code !== EXIT.ok) {
    process.stderr.write(`lighthouse-bridge backup: ${project}: export exited ${code}; older archives kept\n`);
    return code;
  }
  const archives = (await readdir(dir)).filter((name) => ARCHIVE.test(name)).sort();
  const stale = new Set(archives.slice(0, Math.max(0, archives.length - keep)));
  await removeAll(dir, (name) => stale.has(name));
  await writeOut(`${project}: ${join(project, `${stamp}.lhb`)} (kept ${archives.length - stale.size})\n`);
  return EXIT.ok;
}

/**
 * Each project is exported by the `export` command in a child process, under its exit-code
 * contract: a crash or memory blow-up on one project cannot take the others' backups with it.
 */
function exportTo(project: string, file: string, redisUrl: string): Promise<number> {
  const main = process.argv[1];
  if (main === undefined) return Promise.resolve(EXIT.error);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, 'export', project, '--to', file], { env: { ...process.env, LHB_STORE: redisUrl }, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', () => resolve(EXIT.error));
    child.on('exit', (code) => resolve(code ?? EXIT.error));
  });
}

async function removeAll(dir: string, match: (name: string) => boolean): Promise<void> {
  for (const name of (await readdir(dir)).filter(match)) await rm(join(dir, name), { force: true });
}
