import { mkdir, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatProjectId, openStore, storeUrlFrom } from '@lighthouse-bridge/core';
import { createLogger, serveMetrics, type MetricsServer } from '@lighthouse-bridge/core/observability';
import { custodyIn, detachDeadFuseMount, mountAt, mountProject, projectValidator, SYNC_MODES, type SyncMode } from '@lighthouse-bridge/csi-driver';
import { loadPolicyFile, type Validator } from '@lighthouse-bridge/core/speed-layer';
import { actorFrom, parsePortFlag, positionals, projectArg, runCommand, STORE_FLAGS, STORE_FLAGS_USAGE, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

const MOUNT_CHECK_MS = 2000;
const EXIT_GRACE_MS = 1000;

const USAGE = `usage: lighthouse-bridge mount <project> <mountpoint> [--store URL] [--read-only] [--actor NAME] [--policy FILE] [--metrics-port N] [--write-buffer-mib N] [--sync fsync|close] [--custody-dir DIR | --no-custody]
Mounts the project as a FUSE filesystem and serves it in the foreground until SIGINT/SIGTERM,
which unmount it. Creates <mountpoint> when missing; refuses one that is mounted or not empty.
Prints one line when the filesystem is ready; logs JSON on stderr.
If this process dies (kill -9, a crash), the mount stays: running the same command again takes
it over, and programs using it see a pause, not an error (ADR 0083).
${STORE_FLAGS_USAGE}
  --read-only    refuse every change (EROFS)
  --policy FILE  speed-layer rules (YAML or JSON) for /.bridge/validate; default: the project's
                 config on Redis, else the built-in rules
  --metrics-port serve /metrics and /healthz on 127.0.0.1:N
  --write-buffer-mib N  memory for files open for writing, all together (default 256); past it
                 writes fail with ENOSPC and a log line says why
  --sync fsync   (default) fsync, fdatasync and unmount wait for the disk; close returns once the
                 change is visible to every mount of the project, its disk write under way; chmod
                 and utimens of a closed file return before they are stored, and every change
                 after them waits for them (ADR 0098)
  --sync close   every close and change waits for the disk too (slower; ADR 0081)
  --custody-dir DIR  where the keeper process holding the mount's connection, and the mount's
                 journal and unsaved writes, live (default: ${defaultCustodyDir()})
  --no-custody   no keeper: if this process dies, the mount is dead (ENOTCONN) until unmounted`;

/** A per-user runtime directory: /run for root, else XDG_RUNTIME_DIR or the temp dir. */
function defaultCustodyDir(): string {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return '/run/lighthouse-bridge';
  return resolve(process.env.XDG_RUNTIME_DIR || tmpdir(), `lighthouse-bridge-${uid}`);
}

export function run(argv: string[]): Promise<number> {
  return runCommand('mount', USAGE, async () => {
    const { values, positionals: args } = parseArgs({
      args: argv,
      options: {
        ...STORE_FLAGS,
        'read-only': { type: 'boolean' },
        policy: { type: 'string' },
        'metrics-port': { type: 'string' },
        'write-buffer-mib': { type: 'string' },
        sync: { type: 'string' },
        'custody-dir': { type: 'string' },
        'no-custody': { type: 'boolean' },
      },
      allowPositionals: true,
    });
    if (values.help) return writeOut(`${USAGE}\n`).then(() => EXIT.ok);
    const [projectText = '', mountText = ''] = positionals(args, ['<project>', '<mountpoint>']);
    const project = projectArg(projectText);
    const metricsPort = values['metrics-port'] === undefined ? undefined : parsePortFlag(values['metrics-port'], '--metrics-port');
    const writeBufferBytes = values['write-buffer-mib'] === undefined ? undefined : mibArg(values['write-buffer-mib']);
    const sync = values.sync === undefined ? undefined : syncArg(values.sync);
    const mountpoint = resolve(mountText);
    if (values['no-custody'] && values['custody-dir'] !== undefined) throw new UsageError('--custody-dir and --no-custody exclude each other');
    const custody = values['no-custody'] ? undefined : await custodyIn(resolve(values['custody-dir'] ?? defaultCustodyDir()), mountpoint);
    // A mount the keeper holds is ours to take over, not someone else's to refuse.
    if (!custody?.keeper.holds(custody.name)) await requireUsableMountpoint(mountpoint);
    const policy = values.policy === undefined ? undefined : await loadPolicyFile(values.policy).catch((error: Error) => {
      throw new UsageError(error.message);
    });

    const log = createLogger('mount');
    const url = storeUrlFrom(values.store);
    const store = await openStore(url);
    let metrics: MetricsServer | undefined;
    let validator: Validator | undefined;
    try {
      validator = await projectValidator(store, project, mountpoint, { storeUrl: url, logger: log, ...(policy === undefined ? {} : { policy }) });
      const mounted = await mountProject({
        validator,
        store,
        project,
        mountpoint,
        readOnly: values['read-only'] ?? false,
        ...(writeBufferBytes === undefined ? {} : { writeBufferBytes }),
        ...(sync === undefined ? {} : { sync }),
        actor: actorFrom(values.actor),
        ...(custody === undefined ? {} : { custody }),
        onError: (error, context) => log.error(error.message, { ...context, stack: error.stack }),
      });
      try {
        if (metricsPort !== undefined) metrics = await serveMetrics({ port: metricsPort });
        log.info('mounted', { project: formatProjectId(project), mountpoint, store: store.location, readOnly: mounted.readOnly, metricsPort: metrics?.port, tookOver: mounted.tookOver });
        await writeOut(`mounted ${formatProjectId(project)} at ${mountpoint} (${store.kind} ${store.location})${mounted.readOnly ? ' read-only' : ''}${mounted.tookOver ? ' (took over the live mount)' : ''}\n`);
        const reason = await Promise.race([untilSignal(), untilUnmounted(mountpoint)]);
        log.info('unmounting', { reason, mountpoint });
      } finally {
        // Also when a step after the mount failed (metrics port taken): exiting mounted leaves a dead mount.
        await mounted.unmount();
        log.info('unmounted', { mountpoint });
      }
      return EXIT.ok;
    } finally {
      await metrics?.close();
      await validator?.close();
      await store.close();
      // Nothing left running (a keeper call, a pump another unmount ended) may keep us here; exit regardless.
      setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
    }
  });
}

/** Missing is fine (created); a dead FUSE mount is detached; anything else mounted or in use is not. */
async function requireUsableMountpoint(mountpoint: string): Promise<void> {
  await detachDeadFuseMount(mountpoint);
  await mkdir(mountpoint, { recursive: true });
  const existing = await mountAt(mountpoint);
  if (existing) throw new UsageError(`${mountpoint} is already mounted (${existing.fstype}); unmount it first (fusermount -u ${mountpoint})`);
  const entries = await readdir(mountpoint);
  if (entries.length > 0) throw new UsageError(`${mountpoint} is not empty (${entries.length} entries); mount on an empty directory`);
}

function mibArg(text: string): number {
  const mib = Number(text);
  if (!/^\d{1,7}$/.test(text) || mib < 1) throw new UsageError(`--write-buffer-mib expects a whole number of MiB, 1 or more, got "${text}"`);
  return mib * 1024 * 1024;
}

function syncArg(text: string): SyncMode {
  const mode = SYNC_MODES.find((m) => m === text);
  if (!mode) throw new UsageError(`--sync expects ${SYNC_MODES.join(' or ')}, got "${text}"`);
  return mode;
}

/** Resolves when the mount is gone from under us (`fusermount -u` by hand), checked every few seconds. */
function untilUnmounted(mountpoint: string): Promise<string> {
  return new Promise((resolveGone) => {
    const timer = setInterval(() => {
      mountAt(mountpoint).then(
        (entry) => {
          if (entry) return;
          clearInterval(timer);
          resolveGone('unmounted externally');
        },
        () => undefined,
      );
    }, MOUNT_CHECK_MS);
    timer.unref();
  });
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolveSignal) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolveSignal(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
