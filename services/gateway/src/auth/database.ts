import type { Logger, LoupeConfig } from '@loupe/common';
import { LazyDatabase } from '@loupe/common/db';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { CONFIG, LOGGER } from '../tokens.js';
import { GATEWAY_MIGRATIONS_DIR, GATEWAY_SCHEMA } from './api-keys.js';

/**
 * The gateway schema (API keys), opened on first use (see LazyDatabase): reads never wait for it.
 * Callers see no cause: the gateway never shows internal addresses.
 */
@Injectable()
export class GatewayDatabase extends LazyDatabase implements OnApplicationShutdown {
  constructor(@Inject(CONFIG) config: LoupeConfig, @Inject(LOGGER) log: Logger) {
    super(config, log, {
      schema: GATEWAY_SCHEMA,
      migrationsDir: GATEWAY_MIGRATIONS_DIR,
      service: 'gateway',
      unavailableMessage: 'the API key store is unavailable; try again shortly',
    });
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }
}
