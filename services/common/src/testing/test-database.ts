import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, quoteIdent, type Sql } from '../db/connect.js';
import { spawnEmbeddedPostgres } from '../db/embedded.js';
import { runMigrations } from '../db/migrate.js';

/**
 * The server that database tests run on: a real Postgres named by LOUPE_TEST_DATABASE_URL (a fresh
 * database per suite, dropped afterwards), or else an embedded PGlite of its own in a scratch folder.
 * Tests read only this, so one environment variable moves the whole suite between the two.
 */
export const TEST_DATABASE_URL_VARIABLE = 'LOUPE_TEST_DATABASE_URL';

export interface TestDatabase {
  /** connection URL of the suite's own database */
  url: string;
  kind: 'embedded' | 'server';
  /** the embedded server's process id (undefined on a real server) */
  pid?: number;
  stop(): Promise<void>;
}

/** Starts (or creates, on a real server) a database for one test suite. */
export async function startTestDatabase(opts: { port?: number } = {}): Promise<TestDatabase> {
  // Test support is the one place besides the config modules that reads the environment: it picks
  // the server before any service's config exists.
  const serverUrl = process.env[TEST_DATABASE_URL_VARIABLE];
  if (serverUrl) return createServerDatabase(serverUrl);
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-test-db-'));
  const db = await spawnEmbeddedPostgres({ dataDir: path.join(scratch, 'pg'), port: opts.port });
  return {
    url: db.url,
    kind: 'embedded',
    pid: db.pid,
    stop: async () => {
      await db.stop();
      await fs.rm(scratch, { recursive: true, force: true });
    },
  };
}

async function createServerDatabase(serverUrl: string): Promise<TestDatabase> {
  const name = `loupe_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = connect(serverUrl, { max: 1, applicationName: 'loupe-tests' });
  try {
    await admin.unsafe(`CREATE DATABASE ${quoteIdent(name)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const own = connect(url.toString(), { max: 1, applicationName: 'loupe-tests' });
  try {
    await own.unsafe('CREATE EXTENSION IF NOT EXISTS vector');
  } finally {
    await own.end();
  }
  return {
    url: url.toString(),
    kind: 'server',
    stop: async () => {
      const drop = connect(serverUrl, { max: 1, applicationName: 'loupe-tests' });
      try {
        // FORCE (Postgres 13+) ends connections a killed worker process may have left behind.
        await drop.unsafe(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      } finally {
        await drop.end();
      }
    },
  };
}

export interface SuiteDatabaseOptions {
  /** the schema the suite's client uses (search_path) and its migrations create */
  schema?: string;
  /** migrations folder to run into `schema` before the suite's tests */
  migrations?: string;
  /** a fixed port for the embedded server (0, the default, picks a free one) */
  port?: number;
}

export interface SuiteDatabase {
  readonly url: string;
  /** a client on the suite's database, search_path set to `schema` */
  readonly sql: Sql;
  readonly database: TestDatabase;
}

type Hook = (fn: () => Promise<void>, timeoutMs?: number) => void;

/**
 * Registers beforeAll/afterAll hooks that give the suite its own database (see startTestDatabase),
 * migrated when `migrations` is given, and stop it afterwards. The returned object's fields are
 * readable from the first test on.
 */
export function withTestDatabase(
  hooks: { beforeAll: Hook; afterAll: Hook },
  opts: SuiteDatabaseOptions = {},
): SuiteDatabase {
  let database: TestDatabase | undefined;
  let sql: Sql | undefined;
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the test database is not ready: read it inside a test or hook');
    return value;
  };
  hooks.beforeAll(async () => {
    database = await startTestDatabase({ port: opts.port });
    sql = connect(database.url, { schema: opts.schema });
    if (opts.migrations) {
      if (!opts.schema) throw new Error('withTestDatabase: migrations need a schema');
      await runMigrations(sql, { schema: opts.schema, dir: opts.migrations });
    }
  }, 180_000);
  hooks.afterAll(async () => {
    await sql?.end();
    await database?.stop();
  }, 60_000);
  return {
    get url() {
      return ready(database).url;
    },
    get sql() {
      return ready(sql);
    },
    get database() {
      return ready(database);
    },
  };
}
