import type { Logger, LoupeConfig } from '@loupe/common';
import { type DynamicModule, Module } from '@nestjs/common';
import { CaptureClient } from './capture-client.js';
import { SaeDatabase } from './database.js';
import { FeatureData } from './feature-data.js';
import { FeatureList } from './feature-list.js';
import { SaeController } from './sae.controller.js';
import { SaeEvaluation } from './sae-evaluation.js';
import { SaeInference } from './sae-inference.js';
import { SaeRegistry } from './sae-registry.js';
import { Tokenizers } from './tokenizers.js';
import { CONFIG, LOGGER } from './tokens.js';
import { TrainingJobs } from './training-jobs.js';

@Module({})
export class SaeModule {
  static register(config: LoupeConfig, log: Logger): DynamicModule {
    return {
      module: SaeModule,
      controllers: [SaeController],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: LOGGER, useValue: log },
        SaeDatabase,
        CaptureClient,
        SaeRegistry,
        SaeInference,
        SaeEvaluation,
        Tokenizers,
        FeatureData,
        FeatureList,
        TrainingJobs,
      ],
    };
  }
}
