export * from './eventStore.js';
export * from './open.js';
export { embeddedCommitStats, openEmbeddedStore, repairEmbeddedProject, type CutReport, type EmbeddedStoreOptions } from './embedded/embeddedStore.js';
export { openRedisStore } from './redis/redisStore.js';
