import 'reflect-metadata';
import { createLogger, loadConfig } from '@loupe/common';
import { PROTO_LOADER_OPTIONS, protoFile } from '@loupe/common/grpc';
import { GrpcErrorFilter } from '@loupe/common/nest';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions, Transport } from '@nestjs/microservices';
import { ExplainerModule } from './app.module.js';

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024; // records of many windows in one request

/** Starts the explainer gRPC service; returns a function that stops it. */
export async function startExplainerService(): Promise<{ address: string; close(): Promise<void> }> {
  const config = loadConfig();
  const log = createLogger('explainer', config.logLevel);
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(
    ExplainerModule.register(config, log),
    {
      logger: ['error', 'warn'],
      transport: Transport.GRPC,
      options: {
        package: 'loupe.v1',
        protoPath: protoFile('explainer'),
        url: config.explainerAddress,
        loader: PROTO_LOADER_OPTIONS,
        maxSendMessageLength: MAX_MESSAGE_BYTES,
        maxReceiveMessageLength: MAX_MESSAGE_BYTES,
      },
    },
  );
  app.useGlobalFilters(new GrpcErrorFilter(log));
  app.enableShutdownHooks();
  await app.listen();
  log.info(
    { address: config.explainerAddress, llm: config.llmBaseUrl ?? 'baseline-statistical' },
    'explainer service listening',
  );
  return { address: config.explainerAddress, close: () => app.close() };
}
