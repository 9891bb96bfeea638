import type { TestDatabase } from '@loupe/common/testing';

export { startTestDatabase, type TestDatabase } from '@loupe/common/testing';

/**
 * What the service processes and `loupe` commands a suite starts need to reach the suite's database
 * (startTestDatabase): on the real server named by LOUPE_TEST_DATABASE_URL, the suite's own database
 * as DATABASE_URL; on the embedded server, its port, the way `loupe serve` hands its embedded Postgres
 * to the services it starts.
 */
export function databaseEnv(db: TestDatabase): Record<string, string> {
  return db.kind === 'server' ? { DATABASE_URL: db.url } : { LOUPE_EMBEDDED_PG_PORT: new URL(db.url).port };
}
