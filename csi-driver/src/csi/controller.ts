import { invalidArgument, notFound, alreadyExists, aborted } from './errors.js';
import { AbortIfBusy } from './abortIfBusy.js';
import type {
  CreateVolumeRequest,
  DeleteVolumeRequest,
  Empty,
  ListVolumesRequest,
  ListVolumesResponse,
  ValidateVolumeCapabilitiesRequest,
  ValidateVolumeCapabilitiesResponse,
  Volume,
} from './messages.js';
import type { DriverState, VolumeRecord } from './state.js';
import {
  capabilityProblem,
  checkParameters,
  formatVolumeId,
  parseVolumeId,
  projectFrom,
  volumeKey,
  ATTR_NAMESPACE,
  ATTR_PROJECT,
} from './volumes.js';

/** CSI names are at most 128 characters and free of control characters (CSI spec, CreateVolume). */
const BANNED_NAME_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

/**
 * The Controller service: a volume is a binding of a name to a project, recorded under the state
 * dir. Creating one creates nothing in the store (projects exist once they have events or a
 * BridgeProject), and deleting one never deletes project data.
 */
export class ControllerService {
  private readonly busyVolumes = new AbortIfBusy();

  constructor(private readonly state: DriverState) {}

  async CreateVolume(request: CreateVolumeRequest): Promise<{ volume: Volume }> {
    const name = request.name;
    if (!name) throw invalidArgument('name is required');
    if (name.length > 128 || BANNED_NAME_CHARS.test(name)) throw invalidArgument('name must be at most 128 characters without control characters');
    if (request.volume_capabilities.length === 0) throw invalidArgument('volume_capabilities are required');
    for (const capability of request.volume_capabilities) {
      const problem = capabilityProblem(capability);
      if (problem) throw invalidArgument(problem);
    }
    if (request.volume_content_source) throw invalidArgument('volumes cannot be created from snapshots or other volumes; every project keeps its whole history');
    checkParameters(request.parameters);
    const capacityBytes = capacityFrom(request.capacity_range);
    const project = projectFrom(request.parameters, request.parameters['csi.storage.k8s.io/pvc/namespace']);
    const key = volumeKey(name);
    const parameters = { [ATTR_PROJECT]: project.name, [ATTR_NAMESPACE]: project.namespace };

    return this.busyVolumes.run(`volume ${name}`, async () => {
      const existing = await this.state.volumes.get(key);
      if (existing) {
        if (existing.name !== name) throw aborted(`volume name hash collision for "${name}"`);
        const same = existing.capacityBytes === capacityBytes && existing.project.namespace === project.namespace && existing.project.name === project.name;
        if (!same) throw alreadyExists(`volume "${name}" already exists with different parameters or capacity`);
        return { volume: volumeOf(existing) };
      }
      const record: VolumeRecord = { name, volumeId: formatVolumeId(project, key), project, capacityBytes, parameters, createdAt: new Date().toISOString() };
      await this.state.volumes.put(key, record);
      return { volume: volumeOf(record) };
    });
  }

  async DeleteVolume(request: DeleteVolumeRequest): Promise<Empty> {
    if (!request.volume_id) throw invalidArgument('volume_id is required');
    const key = parseVolumeId(request.volume_id)?.key;
    if (key === undefined) return {};
    await this.busyVolumes.run(`volume id ${request.volume_id}`, async () => {
      const record = await this.state.volumes.get(key);
      if (record?.volumeId === request.volume_id) await this.state.volumes.remove(key);
    });
    return {};
  }

  async ValidateVolumeCapabilities(request: ValidateVolumeCapabilitiesRequest): Promise<ValidateVolumeCapabilitiesResponse> {
    if (!request.volume_id) throw invalidArgument('volume_id is required');
    if (request.volume_capabilities.length === 0) throw invalidArgument('volume_capabilities are required');
    const record = await this.find(request.volume_id);
    if (!record) throw notFound(`volume ${request.volume_id} does not exist`);
    for (const capability of request.volume_capabilities) {
      const problem = capabilityProblem(capability);
      if (problem) return { confirmed: null, message: problem };
    }
    return {
      confirmed: { volume_context: volumeOf(record).volume_context, volume_capabilities: request.volume_capabilities, parameters: request.parameters },
      message: '',
    };
  }

  /**
   * Ordered by volume id; the token is the last id returned, so deleting or adding volumes between
   * pages neither repeats nor skips the ones that stay.
   */
  async ListVolumes(request: ListVolumesRequest): Promise<ListVolumesResponse> {
    if (request.max_entries < 0) throw invalidArgument('max_entries must not be negative');
    const after = request.starting_token;
    if (after !== '' && parseVolumeId(after)?.key === undefined) throw aborted(`invalid starting_token "${after}"`);
    const records = (await this.state.volumes.list()).sort((a, b) => (a.volumeId < b.volumeId ? -1 : a.volumeId > b.volumeId ? 1 : 0));
    const remaining = after === '' ? records : records.filter((r) => r.volumeId > after);
    const limit = request.max_entries > 0 ? request.max_entries : remaining.length;
    const page = remaining.slice(0, limit);
    const last = page[page.length - 1];
    return {
      entries: page.map((record) => ({ volume: volumeOf(record) })),
      next_token: remaining.length > page.length && last ? last.volumeId : '',
    };
  }

  async ControllerGetCapabilities(): Promise<{ capabilities: Array<{ rpc: { type: string } }> }> {
    return { capabilities: ['CREATE_DELETE_VOLUME', 'LIST_VOLUMES'].map((type) => ({ rpc: { type } })) };
  }

  private async find(volumeId: string): Promise<VolumeRecord | undefined> {
    const key = parseVolumeId(volumeId)?.key;
    if (key === undefined) return undefined;
    const record = await this.state.volumes.get(key);
    return record?.volumeId === volumeId ? record : undefined;
  }
}

function capacityFrom(range: CreateVolumeRequest['capacity_range']): number {
  if (!range) return 0;
  const { required_bytes: required, limit_bytes: limit } = range;
  if (required < 0 || limit < 0) throw invalidArgument('capacity must not be negative');
  if (limit > 0 && required > limit) throw invalidArgument('required_bytes exceeds limit_bytes');
  return required > 0 ? required : limit;
}

function volumeOf(record: VolumeRecord): Volume {
  return {
    volume_id: record.volumeId,
    capacity_bytes: record.capacityBytes,
    volume_context: { [ATTR_PROJECT]: record.project.name, [ATTR_NAMESPACE]: record.project.namespace },
  };
}
