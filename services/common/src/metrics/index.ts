export * from './graphql.js';
export * from './http-listener.js';
export * from './readiness.js';
export * from './record.js';
export * from './registry.js';
