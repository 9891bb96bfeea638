import { type Logger, type LoupeConfig, LoupeError } from '@loupe/common';
import { type Database, openDatabase, type Sql } from '@loupe/common/db';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { CAPTURE_MIGRATIONS_DIR, CAPTURE_SCHEMA } from '../capture/migrations.js';
import { CONFIG, LOGGER } from './tokens.js';

/**
 * The capture schema, opened on first use: inference RPCs never wait for (or fail with) the database,
 * and a database that was down is tried again on the next request.
 */
@Injectable()
export class CaptureDatabase implements OnApplicationShutdown {
  private opening: Promise<Database> | null = null;

  constructor(
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async sql(): Promise<Sql> {
    if (!this.opening) {
      this.opening = openDatabase(this.config, {
        schema: CAPTURE_SCHEMA,
        migrationsDir: CAPTURE_MIGRATIONS_DIR,
        applicationName: 'loupe-capture',
      });
      this.opening.then(
        (db) => this.log.info({ database: db.describe }, 'capture database ready'),
        (error: Error) => {
          this.log.warn({ err: error.message }, 'capture database unavailable');
          this.opening = null;
        },
      );
    }
    try {
      return (await this.opening).sql;
    } catch (error) {
      throw new LoupeError(`the capture database is unavailable: ${(error as Error).message}`, 'UNAVAILABLE');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await (await this.opening?.catch(() => null))?.close();
  }
}
