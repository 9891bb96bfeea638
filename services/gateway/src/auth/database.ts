import { type Logger, type LoupeConfig, LoupeError } from '@loupe/common';
import { type Database, openDatabase, type Sql } from '@loupe/common/db';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { CONFIG, LOGGER } from '../tokens.js';
import { GATEWAY_MIGRATIONS_DIR, GATEWAY_SCHEMA } from './api-keys.js';

/**
 * The gateway schema (API keys), opened on first use: reads never wait for the database, and a
 * database that was down is tried again on the next mutation.
 */
@Injectable()
export class GatewayDatabase implements OnApplicationShutdown {
  private opening: Promise<Database> | null = null;

  constructor(
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async sql(): Promise<Sql> {
    if (!this.opening) {
      this.opening = openDatabase(this.config, {
        schema: GATEWAY_SCHEMA,
        migrationsDir: GATEWAY_MIGRATIONS_DIR,
        applicationName: 'loupe-gateway',
      });
      this.opening.then(
        (db) => this.log.info({ database: db.describe }, 'gateway database ready'),
        (error: Error) => {
          this.log.warn({ err: error.message }, 'gateway database unavailable');
          this.opening = null;
        },
      );
    }
    try {
      return (await this.opening).sql;
    } catch {
      throw new LoupeError('the API key store is unavailable; try again shortly', 'UNAVAILABLE');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await (await this.opening?.catch(() => null))?.close();
  }
}
