// The capture service's logic without Nest: capture jobs and their store, record rows, document embeddings
// and search. The model and records code it runs lives in @loupe/model and @loupe/records.
export * from './capture/capture-item.js';
export * from './capture/capture-job.js';
export * from './capture/job-store.js';
export * from './capture/migrations.js';
export * from './capture/record-rows.js';
export * from './capture/records-phase.js';
export * from './capture/work-items.js';
export * from './documents/embed.js';
export * from './documents/pooling.js';
export * from './documents/store.js';
