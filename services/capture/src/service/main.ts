import 'reflect-metadata';
import { createLogger, type LoupeConfig, loadConfig } from '@loupe/common';
import { type RunningGrpcService, startGrpcService } from '@loupe/common/nest';
import { CaptureModule } from './app.module.js';
import { CaptureDatabase } from './database.js';
import { ModelRegistry } from './model-registry.js';

const MAX_MESSAGE_BYTES = 512 * 1024 * 1024; // logits of a long text are tens of megabytes

/**
 * Starts the capture gRPC service; returns a function that stops it. `overrides` replace settings of
 * the environment's config for this service only (`loupe serve` names the offline model this way,
 * without changing the environment).
 */
export async function startCaptureService(overrides: Partial<LoupeConfig> = {}): Promise<RunningGrpcService> {
  const config: LoupeConfig = { ...loadConfig(), ...overrides };
  const log = createLogger('capture', config.logLevel);
  const service = await startGrpcService({
    module: CaptureModule.register(config, log),
    proto: 'capture',
    address: config.captureAddress,
    log,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    metricsPort: config.metricsPort,
    serviceToken: config.serviceToken,
    // ready once the default model is loaded (the first probe starts loading it) and Postgres answers
    readiness: (app) => ({
      database: async () => (await app.get(CaptureDatabase).sql())`SELECT 1`,
      model: () => app.get(ModelRegistry).get(''),
    }),
  });
  log.info({ address: config.captureAddress, device: config.device }, 'capture service listening');
  return service;
}
