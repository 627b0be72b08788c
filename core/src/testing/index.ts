export * from './deciderSpec.js';
export * from './eventStoreContract.js';
