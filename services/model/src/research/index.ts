export * from './activation-patching.js';
export * from './direct-logit-attribution.js';
export * from './logit-lens.js';
export * from './tokens.js';
