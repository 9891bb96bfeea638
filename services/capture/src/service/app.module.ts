import type { Logger, LoupeConfig } from '@loupe/common';
import { type DynamicModule, Module } from '@nestjs/common';
import { CaptureController } from './capture.controller.js';
import { CaptureJobs } from './capture-jobs.js';
import { CaptureDatabase } from './database.js';
import { DocumentSearch } from './document-search.js';
import { ModelRegistry } from './model-registry.js';
import { NeuronList } from './neuron-list.js';
import { NeuronRecords } from './neuron-records.js';
import { NeuronWeightsService } from './neuron-weights.js';
import { CONFIG, LOGGER } from './tokens.js';

@Module({})
export class CaptureModule {
  static register(config: LoupeConfig, log: Logger): DynamicModule {
    return {
      module: CaptureModule,
      controllers: [CaptureController],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: LOGGER, useValue: log },
        ModelRegistry,
        CaptureDatabase,
        CaptureJobs,
        NeuronRecords,
        NeuronList,
        NeuronWeightsService,
        DocumentSearch,
      ],
    };
  }
}
