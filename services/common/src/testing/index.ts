// What test suites share: a database per suite (the embedded server or LOUPE_TEST_DATABASE_URL), and a
// local stand-in for the Hugging Face hub.

export * from './hf-server.js';
export * from './test-database.js';
