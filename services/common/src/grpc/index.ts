export type * from '../proto/index.js';
export * from './clients.js';
export * from './health.js';
export * from './protos.js';
export * from './service-token.js';
export * from './status.js';
export * from './tls.js';
