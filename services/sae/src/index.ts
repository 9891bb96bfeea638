export * from './synthetic.js';
export * from './train/adam-ops.js';
export * from './train/decoder-norm-ops.js';
export * from './train/init.js';
export * from './train/topk-graph.js';
export * from './train/trainer.js';
