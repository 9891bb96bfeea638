import type { Logger, LoupeConfig } from '@loupe/common';
import { type DynamicModule, Module } from '@nestjs/common';
import { PublishedRecordSource } from '../published/published-record-source.js';
import { GrpcRecordSource } from '../units/record-source.js';
import { ExplainerDatabase } from './database.js';
import { ExplainerController } from './explainer.controller.js';
import { ExplainerApi } from './explainer-api.js';
import { JobWorker } from './job-worker.js';
import { Models } from './models.js';
import { PublishedApi } from './published-api.js';
import { CONFIG, LOGGER, RECORD_SOURCE } from './tokens.js';

@Module({})
export class ExplainerModule {
  static register(config: LoupeConfig, log: Logger): DynamicModule {
    return {
      module: ExplainerModule,
      controllers: [ExplainerController],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: LOGGER, useValue: log },
        {
          // imported (published) units are scored on their published records; others on captured ones
          provide: RECORD_SOURCE,
          inject: [ExplainerDatabase],
          useFactory: (db: ExplainerDatabase) =>
            new PublishedRecordSource(
              () => db.sql(),
              new GrpcRecordSource({ capture: config.captureAddress, sae: config.saeAddress }),
            ),
        },
        ExplainerDatabase,
        Models,
        JobWorker,
        ExplainerApi,
        PublishedApi,
      ],
    };
  }
}
