import type { Logger, LoupeConfig } from '@loupe/common';
import { LazyDatabase } from '@loupe/common/db';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { CAPTURE_MIGRATIONS_DIR, CAPTURE_SCHEMA } from '../capture/migrations.js';
import { CONFIG, LOGGER } from './tokens.js';

/**
 * The capture schema, opened on first use (see LazyDatabase): inference RPCs never wait for it.
 */
@Injectable()
export class CaptureDatabase extends LazyDatabase implements OnApplicationShutdown {
  constructor(@Inject(CONFIG) config: LoupeConfig, @Inject(LOGGER) log: Logger) {
    super(config, log, {
      schema: CAPTURE_SCHEMA,
      migrationsDir: CAPTURE_MIGRATIONS_DIR,
      service: 'capture',
    });
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }
}
