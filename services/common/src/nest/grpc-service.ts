import type { DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions, Transport } from '@nestjs/microservices';
import { PROTO_LOADER_OPTIONS, protoFile } from '../grpc/index.js';
import type { Logger } from '../logging.js';
import { GrpcErrorFilter } from './grpc-error.filter.js';

export interface GrpcServiceSpec {
  /** the service's root module, registered with its config and logger */
  module: DynamicModule;
  /** proto/loupe/v1/<proto>.proto */
  proto: Parameters<typeof protoFile>[0];
  address: string;
  log: Logger;
  /** largest message either way: sized by each service's biggest answer */
  maxMessageBytes: number;
}

export interface RunningGrpcService {
  address: string;
  close(): Promise<void>;
}

/**
 * Starts a NestJS gRPC microservice the way every Loupe service runs: package loupe.v1, the shared
 * proto-loader options, the one error filter (every error leaves as a gRPC status with a clear message),
 * Nest's own logs limited to warnings.
 */
export async function startGrpcService(spec: GrpcServiceSpec): Promise<RunningGrpcService> {
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(spec.module, {
    logger: ['error', 'warn'],
    transport: Transport.GRPC,
    options: {
      package: 'loupe.v1',
      protoPath: protoFile(spec.proto),
      url: spec.address,
      loader: PROTO_LOADER_OPTIONS,
      maxSendMessageLength: spec.maxMessageBytes,
      maxReceiveMessageLength: spec.maxMessageBytes,
    },
  });
  app.useGlobalFilters(new GrpcErrorFilter(spec.log));
  app.enableShutdownHooks();
  await app.listen();
  return { address: spec.address, close: () => app.close() };
}
