import type { Logger, LoupeConfig } from '@loupe/common';
import { LazyDatabase } from '@loupe/common/db';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { SAE_MIGRATIONS_DIR, SAE_SCHEMA } from '../store/migrations.js';
import { CONFIG, LOGGER } from './tokens.js';

/**
 * The sae schema, opened on first use (see LazyDatabase).
 */
@Injectable()
export class SaeDatabase extends LazyDatabase implements OnApplicationShutdown {
  constructor(@Inject(CONFIG) config: LoupeConfig, @Inject(LOGGER) log: Logger) {
    super(config, log, {
      schema: SAE_SCHEMA,
      migrationsDir: SAE_MIGRATIONS_DIR,
      service: 'sae',
    });
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }
}
