import type { Logger, LoupeConfig } from '@loupe/common';
import { LazyDatabase } from '@loupe/common/db';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { EXPLAINER_MIGRATIONS_DIR, EXPLAINER_SCHEMA } from '../store/migrations.js';
import { CONFIG, LOGGER } from './tokens.js';

/**
 * The explainer schema, opened on first use (see LazyDatabase).
 */
@Injectable()
export class ExplainerDatabase extends LazyDatabase implements OnApplicationShutdown {
  constructor(@Inject(CONFIG) config: LoupeConfig, @Inject(LOGGER) log: Logger) {
    super(config, log, {
      schema: EXPLAINER_SCHEMA,
      migrationsDir: EXPLAINER_MIGRATIONS_DIR,
      service: 'explainer',
    });
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }
}
