// Test support for @loupe/sae, imported as '@loupe/sae/testing' (tests/ and this package's own tests).
// It lies outside src/, so none of it is compiled into dist or shipped with the service.
export * from './gradient-check.js';
export * from './reference.js';
export * from './reference-trainer.js';
export * from './saelens-variants.js';
export * from './synthetic.js';
