import 'reflect-metadata';
import { createLogger, type LoupeConfig, loadConfig } from '@loupe/common';
import { PROTO_LOADER_OPTIONS, protoFile } from '@loupe/common/grpc';
import { GrpcErrorFilter } from '@loupe/common/nest';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions, Transport } from '@nestjs/microservices';
import { CaptureModule } from './app.module.js';

const MAX_MESSAGE_BYTES = 512 * 1024 * 1024; // logits of a long text are tens of megabytes

/**
 * Starts the capture gRPC service; returns a function that stops it. `overrides` replace settings of
 * the environment's config for this service only (`loupe serve` names the offline model this way,
 * without changing the environment).
 */
export async function startCaptureService(
  overrides: Partial<LoupeConfig> = {},
): Promise<{ address: string; close(): Promise<void> }> {
  const config: LoupeConfig = { ...loadConfig(), ...overrides };
  const log = createLogger('capture', config.logLevel);
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(CaptureModule.register(config, log), {
    logger: ['error', 'warn'],
    transport: Transport.GRPC,
    options: {
      package: 'loupe.v1',
      protoPath: protoFile('capture'),
      url: config.captureAddress,
      loader: PROTO_LOADER_OPTIONS,
      maxSendMessageLength: MAX_MESSAGE_BYTES,
      maxReceiveMessageLength: MAX_MESSAGE_BYTES,
    },
  });
  app.useGlobalFilters(new GrpcErrorFilter(log));
  app.enableShutdownHooks();
  await app.listen();
  log.info({ address: config.captureAddress, device: config.device }, 'capture service listening');
  return { address: config.captureAddress, close: () => app.close() };
}
