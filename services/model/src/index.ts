// The model library: GPT-2 checkpoints, ONNX graphs, tokenizer, ONNX Runtime sessions and runner, hub pull,
// fixture checkpoints. Plain TypeScript: no Nest, no database.
export * from './config/checkpoint.js';
export * from './config/gpt2-config.js';
export * from './fixture/index.js';
export * from './graph/convert.js';
export * from './graph/gpt2-graph.js';
export * from './graph/manifest.js';
export * from './graph/model-folder.js';
export * from './graph/unembedding.js';
export * from './hub/download.js';
export * from './hub/hf-files.js';
export * from './research/index.js';
export * from './runtime/batcher.js';
export * from './runtime/control-feeds.js';
export * from './runtime/decoder.js';
export * from './runtime/generate.js';
export * from './runtime/gpt2-runner.js';
export * from './runtime/hook-rows.js';
export * from './runtime/logit-tokens.js';
export * from './runtime/neuron-weights.js';
export * from './runtime/patch-feeds.js';
export * from './runtime/patches.js';
export * from './runtime/sessions.js';
export * from './runtime/steering.js';
export * from './runtime/window-reduction.js';
export * from './tokenizer/byte-level.js';
export * from './tokenizer/gpt2-tokenizer.js';
