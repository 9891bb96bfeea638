import 'reflect-metadata';
import { createLogger, loadConfig } from '@loupe/common';
import { PROTO_LOADER_OPTIONS, protoFile } from '@loupe/common/grpc';
import { GrpcErrorFilter } from '@loupe/common/nest';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions, Transport } from '@nestjs/microservices';
import { SaeModule } from './app.module.js';

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024; // an encoded long text with many features per token

/** Starts the SAE gRPC service; returns a function that stops it. */
export async function startSaeService(): Promise<{ address: string; close(): Promise<void> }> {
  const config = loadConfig();
  const log = createLogger('sae', config.logLevel);
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(SaeModule.register(config, log), {
    logger: ['error', 'warn'],
    transport: Transport.GRPC,
    options: {
      package: 'loupe.v1',
      protoPath: protoFile('sae'),
      url: config.saeAddress,
      loader: PROTO_LOADER_OPTIONS,
      maxSendMessageLength: MAX_MESSAGE_BYTES,
      maxReceiveMessageLength: MAX_MESSAGE_BYTES,
    },
  });
  app.useGlobalFilters(new GrpcErrorFilter(log));
  app.enableShutdownHooks();
  await app.listen();
  log.info({ address: config.saeAddress, capture: config.captureAddress }, 'sae service listening');
  return { address: config.saeAddress, close: () => app.close() };
}
