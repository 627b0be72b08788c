import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic, type ProjectId } from '@lighthouse-bridge/core';

/**
 * Small JSON records, one file each, written atomically (core's `writeFileAtomic`) so a plugin
 * killed mid-write leaves either the old record or the new one, never half.
 */
export class RecordDir<T> {
  private ready: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  /** File names come from a hash of the key: keys are paths or CO-chosen names, unsafe as names. */
  private file(key: string): string {
    return join(this.dir, `${createHash('sha256').update(key).digest('hex').slice(0, 40)}.json`);
  }

  private ensureDir(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    return this.ready;
  }

  async get(key: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(this.file(key), 'utf8')) as T;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async put(key: string, value: T): Promise<void> {
    await this.ensureDir();
    await writeFileAtomic(this.file(key), Buffer.from(JSON.stringify(value)), { mode: 0o600 });
  }

  async remove(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
    await fsyncDir(this.dir);
  }

  /** Every stored record; leftovers of interrupted writes (`*.tmp`) are removed on the way. */
  async list(): Promise<T[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const records: T[] = [];
    for (const name of names) {
      if (name.endsWith('.tmp')) {
        await rm(join(this.dir, name), { force: true });
      } else if (name.endsWith('.json')) {
        records.push(JSON.parse(await readFile(join(this.dir, name), 'utf8')) as T);
      }
    }
    return records;
  }
}

/** What the node plugin mounted where, kept so a restarted plugin can mount it again (ADR 0071). */
export interface PublishRecord {
  volumeId: string;
  targetPath: string;
  project: ProjectId;
  readOnly: boolean;
  ephemeral: boolean;
  /** Who the mount writes events as. */
  actor: string;
  /** Where the pod's containers mount the volume, when its attributes said (see `workspacePathFrom`). */
  workspacePath?: string;
  publishedAt: string;
}

/** A volume CreateVolume made; DeleteVolume forgets it and never touches the project's data. */
export interface VolumeRecord {
  name: string;
  volumeId: string;
  project: ProjectId;
  /** Recorded, not enforced: the project's own limits bound its size. */
  capacityBytes: number;
  parameters: Record<string, string>;
  createdAt: string;
}

export interface DriverState {
  publishes: RecordDir<PublishRecord>;
  volumes: RecordDir<VolumeRecord>;
}

export function openDriverState(stateDir: string): DriverState {
  return {
    publishes: new RecordDir<PublishRecord>(join(stateDir, 'publishes')),
    volumes: new RecordDir<VolumeRecord>(join(stateDir, 'volumes')),
  };
}
