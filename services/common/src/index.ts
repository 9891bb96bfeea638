// The light part of the shared library: no database client is loaded unless '@loupe/common/db' is
// imported, which keeps `loupe` commands that need no database fast to start.
export * from './cache/byte-lru.js';
export * from './config.js';
export * from './errors.js';
export * from './hooks.js';
export * from './job-cursor.js';
export * from './logging.js';
export * from './onnx/graph-builder.js';
export * from './random.js';
export * from './request-context.js';
export * from './tensors/dtype.js';
export * from './tensors/file-writer-thread.js';
export * from './tensors/safetensors.js';
export * from './units.js';
export * from './workspace.js';
