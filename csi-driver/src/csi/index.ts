export { startCsiDriver, socketPathOf, type CsiDriver, type CsiDriverOptions, type DriverMode } from './server.js';
export { FuseMounter, type Mounter } from './mounter.js';
export { givenKeeper, ownKeeper, predecessorHandover, type CustodySource } from './custodySource.js';
export { MountRegistry, registeredMounter } from './mountRegistry.js';
export { noConfig, redisConfigSource, type ConfigSource } from './access.js';
export { loadCsiPackage, loadRegistrationPackage, type CsiPackage } from './proto.js';
export { serveRegistration, type PluginRegistration, type RegistrationState } from './registration.js';
export { liveWhenSocketAnswers, readyWhenRegistered, serveHealth } from './healthServer.js';
