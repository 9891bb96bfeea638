export * from './connect.js';
export * from './connection-errors.js';
export * from './embedded.js';
export * from './job-queue.js';
export * from './jobs.js';
export * from './lazy-database.js';
export * from './migrate.js';
export * from './open.js';
