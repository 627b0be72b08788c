export { startCsiDriver, socketPathOf, type CsiDriver, type CsiDriverOptions, type DriverMode } from './server.js';
export { FuseMounter, type Mounter } from './mounter.js';
export { MountRegistry, registeredMounter } from './mountRegistry.js';
export { noConfig, redisConfigSource, type ConfigSource } from './access.js';
export { loadCsiPackage, type CsiPackage } from './proto.js';
