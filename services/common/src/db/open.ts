import net from 'node:net';
import path from 'node:path';
import type { LoupeConfig } from '../config.js';
import { connect, type Sql } from './connect.js';
import { spawnEmbeddedPostgres } from './embedded-process.js';
import { runMigrations } from './migrate.js';

export interface Database {
  sql: Sql;
  /** where the client is connected, without credentials, for logs */
  describe: string;
  close(): Promise<void>;
}

/**
 * The one way services and commands reach Postgres: DATABASE_URL when set; otherwise the embedded
 * server on LOUPE_EMBEDDED_PG_PORT, reusing one that `loupe serve` already runs, else starting it as a
 * child process (which stops when this process exits). Migrations of `schema` are applied on open.
 */
export async function openDatabase(
  config: Pick<LoupeConfig, 'databaseUrl' | 'dataDir' | 'embeddedPgPort'> &
    Partial<Pick<LoupeConfig, 'dbPoolSize' | 'dbStatementTimeoutMs'>>,
  options: { schema: string; migrationsDir: string; applicationName: string },
): Promise<Database> {
  let url = config.databaseUrl;
  let stopEmbedded: (() => Promise<void>) | undefined;
  let describe = 'DATABASE_URL';
  if (!url) {
    const port = config.embeddedPgPort;
    describe = `embedded Postgres on 127.0.0.1:${port}`;
    if (await listening('127.0.0.1', port)) {
      url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
    } else {
      const embedded = await spawnEmbeddedPostgres({ dataDir: path.join(config.dataDir, 'pg'), port });
      url = embedded.url;
      stopEmbedded = () => embedded.stop();
    }
  }
  const sql = connect(url, {
    schema: options.schema,
    applicationName: options.applicationName,
    max: config.dbPoolSize || undefined,
    statementTimeoutMs: config.dbStatementTimeoutMs,
  });
  try {
    await runMigrations(sql, { schema: options.schema, dir: options.migrationsDir });
  } catch (error) {
    await sql.end({ timeout: 1 });
    await stopEmbedded?.();
    throw error;
  }
  return {
    sql,
    describe,
    async close() {
      await sql.end({ timeout: 5 });
      await stopEmbedded?.();
    },
  };
}

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
