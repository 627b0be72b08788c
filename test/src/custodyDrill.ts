import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));
const READER = fileURLToPath(new URL('../tools/custody-reader.py', import.meta.url));
const READY_TIMEOUT_MS = 30_000;

export interface DrillOptions {
  /** A scratch directory: store, custody, mountpoint and the reader's private bind live there. */
  dir: string;
  restarts: number;
  /** Load between kills, chosen at random in this range (ms). */
  loadMs?: [number, number];
  project?: string;
  /** Extra arguments for `mount` (e.g. a Redis store); default an embedded store in `dir`. */
  mountArgs?: string[];
  log?: (line: string) => void;
}

export interface ReaderReport {
  writes: number;
  errors: Record<string, number>;
  maxGapMs: number;
}

export interface DrillResult {
  /** Per restart: the reader's longest pause around it, and kill → successor's "mounted" line. */
  restarts: { stallMs: number; takeoverMs: number }[];
  reader: ReaderReport;
  /** Every error line the reader printed. */
  readerErrors: string[];
  /** The file the reader wrote, read through the mount after it closed it. */
  content: Buffer;
  /** Whether every successor said it took the live mount over. */
  allTookOver: boolean;
}

/** Lines of a child's stdout, as they come. */
function lines(child: ChildProcess, onLine: (line: string) => void): void {
  createInterface({ input: child.stdout! }).on('line', onLine);
}

/** The first line `child` prints on stdout; rejects if it exits first or prints nothing within 30 s. */
export function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => reject(new Error(`${what}: no output within ${READY_TIMEOUT_MS} ms: ${stderr}`)), READY_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    child.once('exit', (code, signal) => reject(new Error(`${what} exited (${code ?? signal}): ${stderr}`)));
  });
}

/**
 * `mount PROJECT` with its custody under `dir` (and its store there too unless `mountArgs` names
 * one): the mountpoint, the keeper's socket, and the command to start (again).
 */
export function custodyMount(dir: string, project: string, mountArgs = ['--store', `file://${join(dir, 'store')}`]): { mnt: string; socket: string; start(): ChildProcess } {
  const mnt = join(dir, 'mnt');
  const args = [CLI, 'mount', project, mnt, '--custody-dir', join(dir, 'custody'), ...mountArgs];
  const env = { ...process.env, LHB_LOG_LEVEL: 'error' };
  return { mnt, socket: join(dir, 'custody', 'keeper.sock'), start: () => spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }) };
}

/** Unmounts (SIGTERM) and ends the keeper the mount started, which would exit by itself 10 s later. */
export async function stopMount(server: ChildProcess, socket: string): Promise<void> {
  server.kill('SIGTERM');
  await exited(server);
  spawn('pkill', ['-f', `keeper --socket ${socket}`]);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * The custody contract, tried as a user would break it: `lighthouse-bridge mount` serves a project;
 * a program in its own mount namespace, on a PRIVATE bind of the mount (as a container sees it),
 * holds a file open and loops writes and reads; the server is `kill -9`ed and the same command
 * started again `restarts` times. The caller asserts on what the program saw.
 */
export async function restartDrill(options: DrillOptions): Promise<DrillResult> {
  const { dir, restarts, log = () => undefined } = options;
  const [minLoad, maxLoad] = options.loadMs ?? [200, 500];
  const priv = join(dir, 'private');
  await mkdir(priv, { recursive: true });
  const { mnt, socket, start } = custodyMount(dir, options.project ?? 'default/custody', options.mountArgs);

  let server = start();
  let program: Program | undefined;
  try {
    log(await firstLine(server, 'mount'));
    program = await startProgram(mnt, priv, 'drill.log');
    const { gaps, readerErrors } = program;

    const kills: { atMs: number; takeoverMs: number }[] = [];
    let allTookOver = true;
    for (let n = 0; n < restarts; n++) {
      await sleep(minLoad + Math.random() * (maxLoad - minLoad));
      const atMs = Date.now();
      server.kill('SIGKILL');
      await exited(server);
      server = start();
      const line = await firstLine(server, `mount after kill ${n + 1}`);
      allTookOver &&= line.includes('took over');
      kills.push({ atMs, takeoverMs: Date.now() - atMs });
      log(`kill ${n + 1}: ${line}`);
    }
    await sleep(300);
    const report = await program.stop();
    const content = await readFile(join(mnt, 'current', 'drill.log'));
    return { restarts: kills.map((k) => ({ stallMs: stallAround(gaps, k.atMs), takeoverMs: k.takeoverMs })), reader: report, readerErrors, content, allTookOver };
  } finally {
    program?.kill();
    await stopMount(server, socket);
  }
}

/**
 * The records below `writes` that are not in `content` as the program wrote them (record i is
 * `%07d\n` at offset 8*i): every one the program was told landed must be there.
 */
export function missingRecords(content: Buffer, writes: number): number[] {
  const missing: number[] = [];
  for (let i = 0; i < writes; i++) {
    if (content.toString('latin1', i * 8, i * 8 + 8) !== `${String(i % 10_000_000).padStart(7, '0')}\n`) missing.push(i);
  }
  return missing;
}

/** A pause the program saw: how long, and when it ended (ms since the epoch). */
export interface Gap {
  ms: number;
  endMs: number;
}

/** The longest pause the program saw that spans the instant `atMs`. */
export function stallAround(gaps: readonly Gap[], atMs: number): number {
  return Math.max(0, ...gaps.filter((g) => g.endMs >= atMs && g.endMs - g.ms <= atMs + 50).map((g) => g.ms));
}

export interface Program {
  readonly gaps: Gap[];
  readonly readerErrors: string[];
  /** SIGTERM: it closes its file and reports. */
  stop(): Promise<ReaderReport>;
  kill(): void;
}

/**
 * The program a pod runs, in its own mount namespace on a PRIVATE bind of `mnt` at `priv` (as a
 * container sees a volume): test/tools/custody-reader.py on `current/<file>`.
 */
export async function startProgram(mnt: string, priv: string, file: string): Promise<Program> {
  const reader = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && exec python3 "$3" "$2/current/$4"', 'sh', mnt, priv, READER, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const gaps: Gap[] = [];
  const readerErrors: string[] = [];
  let report: ReaderReport | undefined;
  const ready = firstLine(reader, 'reader');
  lines(reader, (line) => {
    const [kind, a = '', b = ''] = line.split(' ');
    if (kind === 'gap') gaps.push({ ms: Number(a), endMs: Number(b) });
    else if (kind === 'error') readerErrors.push(line);
    else if (line.startsWith('{')) report = JSON.parse(line) as ReaderReport;
  });
  if ((await ready) !== 'ready') throw new Error('reader did not start');
  return {
    gaps,
    readerErrors,
    async stop() {
      reader.kill('SIGTERM');
      await exited(reader);
      if (!report) throw new Error(`the reader printed no report; errors: ${readerErrors.join('; ')}`);
      return report;
    },
    kill: () => reader.kill('SIGKILL'),
  };
}

/** p-th percentile (0-100) of `values`, nearest rank. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}
