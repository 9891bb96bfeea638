export type * from '../proto/index.js';
export * from './protos.js';
export * from './status.js';
