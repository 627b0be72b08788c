export { mountProject, MountpointBusyError, CACHE_TIMEOUTS, SYNC_MODES, type MountOptions, type MountedProject, type SyncMode } from './mount/mountProject.js';
export { detachDeadFuseMount, lazyUnmount, mountAt, mountTable } from './mount/mountpoint.js';
export type { ValidateBackend } from './fuse/validation.js';
export { projectValidator, type ValidatorSettings } from './mount/projectValidator.js';
export { custodyIn, type CustodyOptions } from './fuse/custody/custody.js';
export { KeeperClient } from './fuse/custody/keeper.js';
