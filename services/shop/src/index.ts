// The shop library: the seeded product catalog, its taxonomy, labelled queries and the search metrics.
export * from './catalog/generator.js';
export * from './catalog/metrics.js';
export * from './catalog/queries.js';
export * from './catalog/taxonomy.js';
