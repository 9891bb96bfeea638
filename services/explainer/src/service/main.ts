import 'reflect-metadata';
import { createLogger, loadConfig } from '@loupe/common';
import { type RunningGrpcService, startGrpcService } from '@loupe/common/nest';
import { ExplainerModule } from './app.module.js';
import { ExplainerDatabase } from './database.js';

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024; // records of many windows in one request

/** Starts the explainer gRPC service; returns a function that stops it. */
export async function startExplainerService(): Promise<RunningGrpcService> {
  const config = loadConfig();
  const log = createLogger('explainer', config.logLevel);
  const service = await startGrpcService({
    module: ExplainerModule.register(config, log),
    proto: 'explainer',
    address: config.explainerAddress,
    log,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    metricsPort: config.metricsPort,
    serviceToken: config.serviceToken,
    readiness: (app) => ({ database: async () => (await app.get(ExplainerDatabase).sql())`SELECT 1` }),
  });
  log.info(
    { address: config.explainerAddress, llm: config.llmBaseUrl ?? 'baseline-statistical' },
    'explainer service listening',
  );
  return service;
}
