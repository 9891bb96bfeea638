// What test suites share: a database per suite, on the embedded server or on LOUPE_TEST_DATABASE_URL.
export * from './test-database.js';
