import { closeSync, openSync, writeSync } from 'node:fs';
import { MNT_DETACH, native, type Pump } from './native.js';
import { FuseSession, type SessionOptions } from './session.js';
import { MAX_WRITE, NOTIFY_RESEND, OUT_HEADER, REQUEST_BUFFER_BYTES } from './protocol.js';

const MS_NOSUID = 2;
const MS_NODEV = 4;
const FSNAME = 'lighthouse-bridge';
const FSTYPE = `fuse.${FSNAME}`;
/** How long a new mount may take to hear the kernel's INIT before we call it failed. */
const INIT_TIMEOUT_MS = 10_000;

/** One kernel FUSE connection served by this process. */
export interface KernelMount {
  readonly session: FuseSession;
  /** The /dev/fuse descriptor: custody hands a duplicate to the keeper. */
  readonly fd: number;
  /** Detaches the mount (lazily when busy) and stops serving. */
  unmount(): Promise<void>;
}

export type SessionSetup = Omit<SessionOptions, 'send'>;

/** mount(2) options for a connection on `fd`: as root directly, else through fusermount3 (setuid). */
function mountOptions(fd: number | undefined, allowOther: boolean): string {
  const own = [`rootmode=40000`, `user_id=${process.getuid?.() ?? 0}`, `group_id=${process.getgid?.() ?? 0}`, `max_read=${MAX_WRITE}`];
  return [...(fd === undefined ? [] : [`fd=${fd}`]), ...own, ...(allowOther ? ['allow_other'] : [])].join(',');
}

/** Mounts a new FUSE connection at `mountpoint` and serves it with a session built from `setup`. */
export async function mountKernel(mountpoint: string, setup: SessionSetup): Promise<KernelMount> {
  const root = process.getuid?.() === 0;
  let fd: number;
  if (root) {
    fd = openSync('/dev/fuse', 'r+');
    try {
      // Pods run as many users; only root may allow them in, and the node plugin is root.
      native.mount(FSNAME, mountpoint, FSTYPE, MS_NOSUID | MS_NODEV, mountOptions(fd, true));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  } else {
    fd = native.fusermountMount(mountpoint, `${mountOptions(undefined, false)},fsname=${FSNAME},subtype=${FSNAME},nosuid,nodev`);
  }
  let initialized!: () => void;
  const init = new Promise<void>((resolve) => (initialized = resolve));
  const onInit = setup.onInit;
  const served = serve(mountpoint, fd, {
    ...setup,
    onInit: (raw) => {
      onInit?.(raw);
      initialized();
    },
  });
  served.start();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${mountpoint}: the kernel sent no FUSE INIT within ${INIT_TIMEOUT_MS} ms`)), INIT_TIMEOUT_MS);
  });
  try {
    await Promise.race([init, timeout, served.ended.then(() => Promise.reject(new Error(`${mountpoint}: the FUSE connection ended before INIT`)))]);
  } catch (error) {
    await served.unmount().catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return served;
}

/**
 * Serves a connection a predecessor mounted (custody): `init` is the INIT request it answered, so
 * this session negotiates nothing. `restore` rebuilds the predecessor's nodes and descriptors before
 * the first request is read; then the kernel is asked (FUSE_NOTIFY_RESEND, when it can) to queue
 * again every request the predecessor had read and not answered.
 */
export async function adoptKernel(mountpoint: string, fd: number, init: Buffer, setup: SessionSetup, restore: (session: FuseSession) => Promise<void>): Promise<KernelMount> {
  const served = serve(mountpoint, fd, setup, init);
  await restore(served.session);
  served.start();
  try {
    if (served.session.connection?.resend) notify(fd, NOTIFY_RESEND);
  } catch (error) {
    // The caller closes the descriptor of a failed takeover: nothing may still be watching it.
    await served.stop();
    throw error;
  }
  return served;
}

function notify(fd: number, code: number): void {
  const out = Buffer.alloc(OUT_HEADER);
  out.writeUInt32LE(OUT_HEADER, 0);
  out.writeInt32LE(code, 4);
  writeSync(fd, out);
}

/** A session on `fd` that reads nothing until start(). */
function serve(mountpoint: string, fd: number, setup: SessionSetup, adoptInit?: Buffer): KernelMount & { ended: Promise<number>; start(): void; stop(): Promise<void> } {
  let closed = false;
  const send = (reply: Buffer): void => {
    // An answer finishing after the descriptor closed must not land in whatever reused its number.
    if (closed) return;
    try {
      writeSync(fd, reply);
    } catch (error) {
      // ENOENT: the request was interrupted meanwhile; ENODEV: unmounted. Neither has anyone to tell.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENODEV') setup.report('reply', error);
    }
  };
  const session = new FuseSession({ ...setup, send });
  if (adoptInit) session.adopt(adoptInit);
  let pump: Pump | undefined;
  let ending!: (errno: number) => void;
  const ended = new Promise<number>((resolve) => (ending = resolve));
  const stop = async (): Promise<void> => {
    if (!pump) return;
    pump.stop();
    await ended;
  };
  const close = (): void => {
    if (closed) return;
    closed = true;
    closeSync(fd);
  };
  return {
    session,
    fd,
    ended,
    stop,
    start: () => {
      pump ??= native.startPump(fd, REQUEST_BUFFER_BYTES, (raw) => session.handle(raw), ending);
    },
    unmount: async () => {
      try {
        native.umount(mountpoint, 0);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // EINVAL: not mounted any more. Anything else (EPERM when not root) is the caller's to detach.
        if (code === 'EBUSY') native.umount(mountpoint, MNT_DETACH);
        else if (code !== 'EINVAL' && code !== 'ENOENT') throw error;
      } finally {
        await stop();
        close();
      }
    },
  };
}
