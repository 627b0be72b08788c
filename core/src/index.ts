export * from './events/events.js';
export * from './events/projectId.js';
export * from './aggregate/state.js';
export * from './aggregate/commands.js';
export * from './aggregate/limits.js';
export * from './store/eventStore.js';
export * from './store/open.js';
export * from './config/projectConfig.js';
