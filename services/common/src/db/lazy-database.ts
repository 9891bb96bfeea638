import type { LoupeConfig } from '../config.js';
import { LoupeError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { Sql } from './connect.js';
import { type Database, openDatabase } from './open.js';

export interface LazyDatabaseOptions {
  schema: string;
  migrationsDir: string;
  /** e.g. "capture": names the connection (`loupe-capture`) and the log lines */
  service: string;
  /** what callers are told when it cannot be reached; default names the schema and the cause */
  unavailableMessage?: string;
}

/**
 * A service's schema, opened on first use: a service starts (and serves what needs no database)
 * without waiting for or failing with Postgres, and a database that was down is tried again on the
 * next request instead of being remembered as failed.
 */
export class LazyDatabase {
  private opening: Promise<Database> | null = null;

  constructor(
    private readonly config: LoupeConfig,
    private readonly log: Logger,
    private readonly options: LazyDatabaseOptions,
  ) {}

  async sql(): Promise<Sql> {
    const { schema, migrationsDir, service } = this.options;
    if (!this.opening) {
      this.opening = openDatabase(this.config, {
        schema,
        migrationsDir,
        applicationName: `loupe-${service}`,
      });
      this.opening.then(
        (db) => this.log.info({ database: db.describe }, `${service} database ready`),
        (error: Error) => {
          this.log.warn({ err: error.message }, `${service} database unavailable`);
          this.opening = null;
        },
      );
    }
    try {
      return (await this.opening).sql;
    } catch (error) {
      throw new LoupeError(
        this.options.unavailableMessage ??
          `the ${service} database is unavailable: ${(error as Error).message}`,
        'UNAVAILABLE',
      );
    }
  }

  async close(): Promise<void> {
    await (await this.opening?.catch(() => null))?.close();
  }
}
