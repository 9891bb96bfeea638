import { type Logger, type LoupeConfig, LoupeError } from '@loupe/common';
import { type Database, openDatabase, type Sql } from '@loupe/common/db';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { EXPLAINER_MIGRATIONS_DIR, EXPLAINER_SCHEMA } from '../store/migrations.js';
import { CONFIG, LOGGER } from './tokens.js';

/**
 * The explainer schema, opened on first use: the service starts without waiting for (or failing with)
 * the database, and a database that was down is tried again on the next request.
 */
@Injectable()
export class ExplainerDatabase implements OnApplicationShutdown {
  private opening: Promise<Database> | null = null;

  constructor(
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async sql(): Promise<Sql> {
    if (!this.opening) {
      this.opening = openDatabase(this.config, {
        schema: EXPLAINER_SCHEMA,
        migrationsDir: EXPLAINER_MIGRATIONS_DIR,
        applicationName: 'loupe-explainer',
      });
      this.opening.then(
        (db) => this.log.info({ database: db.describe }, 'explainer database ready'),
        (error: Error) => {
          this.log.warn({ err: error.message }, 'explainer database unavailable');
          this.opening = null;
        },
      );
    }
    try {
      return (await this.opening).sql;
    } catch (error) {
      throw new LoupeError(
        `the explainer database is unavailable: ${(error as Error).message}`,
        'UNAVAILABLE',
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await (await this.opening?.catch(() => null))?.close();
  }
}
