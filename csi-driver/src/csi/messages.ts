/**
 * The CSI v1 messages we read and write, as @grpc/proto-loader decodes them with the options in
 * `proto.ts` (keepCase, enums as strings, int64 as numbers, defaults on, oneof discriminators).
 * Only the fields this driver uses; the wire format is fixed by `../../proto/csi.proto`.
 */

export type StringMap = Record<string, string>;

export type AccessModeName =
  | 'UNKNOWN'
  | 'SINGLE_NODE_WRITER'
  | 'SINGLE_NODE_READER_ONLY'
  | 'MULTI_NODE_READER_ONLY'
  | 'MULTI_NODE_SINGLE_WRITER'
  | 'MULTI_NODE_MULTI_WRITER'
  | 'SINGLE_NODE_SINGLE_WRITER'
  | 'SINGLE_NODE_MULTI_WRITER';

export interface VolumeCapability {
  block?: Record<string, never> | null;
  mount?: { fs_type: string; mount_flags: string[]; volume_mount_group?: string } | null;
  access_type?: 'block' | 'mount';
  access_mode: { mode: AccessModeName } | null;
}

export interface Volume {
  capacity_bytes: number;
  volume_id: string;
  volume_context: StringMap;
}

export interface CreateVolumeRequest {
  name: string;
  capacity_range: { required_bytes: number; limit_bytes: number } | null;
  volume_capabilities: VolumeCapability[];
  parameters: StringMap;
  volume_content_source: { type?: 'snapshot' | 'volume' } | null;
}

export interface DeleteVolumeRequest {
  volume_id: string;
}

export interface ValidateVolumeCapabilitiesRequest {
  volume_id: string;
  volume_context: StringMap;
  volume_capabilities: VolumeCapability[];
  parameters: StringMap;
}

export interface ValidateVolumeCapabilitiesResponse {
  confirmed: { volume_context: StringMap; volume_capabilities: VolumeCapability[]; parameters: StringMap } | null;
  message: string;
}

export interface ListVolumesRequest {
  max_entries: number;
  starting_token: string;
}

export interface ListVolumesResponse {
  entries: Array<{ volume: Volume }>;
  next_token: string;
}

export interface NodePublishVolumeRequest {
  volume_id: string;
  staging_target_path: string;
  target_path: string;
  volume_capability: VolumeCapability | null;
  readonly: boolean;
  volume_context: StringMap;
}

export interface NodeUnpublishVolumeRequest {
  volume_id: string;
  target_path: string;
}

export interface NodeGetVolumeStatsRequest {
  volume_id: string;
  volume_path: string;
}

export interface VolumeUsage {
  available: number;
  total: number;
  used: number;
  unit: 'BYTES' | 'INODES';
}

export interface NodeGetVolumeStatsResponse {
  usage: VolumeUsage[];
  volume_condition: { abnormal: boolean; message: string };
}

export type Empty = Record<string, never>;
