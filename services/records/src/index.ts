// The records library: windows of a dataset, per-unit records (top / random / quantile windows, statistics,
// histograms) for neurons and SAE features alike, record files, and the one owner of the shard layout.
export * from './record-file.js';
export * from './records-build.js';
export * from './records-threads.js';
export * from './shards/shard-files.js';
export * from './shards/shard-folder.js';
export * from './top-windows.js';
export * from './unit-records.js';
export * from './window-reducer.js';
export * from './windows/dataset.js';
export * from './windows/windows.js';
