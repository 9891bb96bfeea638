import 'reflect-metadata';
import { createLogger, loadConfig } from '@loupe/common';
import { type RunningGrpcService, startGrpcService } from '@loupe/common/nest';
import { SaeModule } from './app.module.js';
import { SaeDatabase } from './database.js';

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024; // an encoded long text with many features per token

/** Starts the SAE gRPC service; returns a function that stops it. */
export async function startSaeService(): Promise<RunningGrpcService> {
  const config = loadConfig();
  const log = createLogger('sae', config.logLevel);
  const service = await startGrpcService({
    module: SaeModule.register(config, log),
    proto: 'sae',
    address: config.saeAddress,
    log,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    metricsPort: config.metricsPort,
    serviceToken: config.serviceToken,
    readiness: (app) => ({ database: async () => (await app.get(SaeDatabase).sql())`SELECT 1` }),
  });
  log.info({ address: config.saeAddress, capture: config.captureAddress }, 'sae service listening');
  return service;
}
