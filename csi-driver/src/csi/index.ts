export { startCsiDriver, socketPathOf, type CsiDriver, type CsiDriverOptions, type DriverMode } from './server.js';
export { FuseMounter } from './mounter.js';
export { noConfig, redisConfigSource, type ConfigSource } from './access.js';
export { loadCsiPackage, type CsiPackage } from './proto.js';
