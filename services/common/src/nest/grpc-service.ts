import path from 'node:path';
import { type DynamicModule, type INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions, Transport } from '@nestjs/microservices';
import { PROTO_LOADER_OPTIONS, PROTO_ROOT, protoFile } from '../grpc/protos.js';
import { type GrpcTls, grpcServerCredentials, grpcTlsFromConfig } from '../grpc/tls.js';
import type { Logger } from '../logging.js';
import { startMetricsListener } from '../metrics/http-listener.js';
import { type ReadinessChecks, registerReadiness } from '../metrics/readiness.js';
import { GrpcCallInterceptor } from './grpc-call.interceptor.js';
import { GrpcErrorFilter } from './grpc-error.filter.js';
import { HealthController, SERVED_SERVICE } from './health.controller.js';
import { ServiceTokenGuard } from './service-token.guard.js';

export interface GrpcServiceSpec {
  /** the service's root module, registered with its config and logger */
  module: DynamicModule;
  /** proto/loupe/v1/<proto>.proto */
  proto: Parameters<typeof protoFile>[0];
  address: string;
  log: Logger;
  /** largest message either way: sized by each service's biggest answer */
  maxMessageBytes: number;
  /**
   * What must work before the service reports SERVING (gRPC health) and ready (/readyz), each check
   * named (the name appears in the reason); given the started app to reach its providers.
   */
  readiness?: (app: INestMicroservice) => ReadinessChecks;
  /** port of the process's /metrics, /healthz, /readyz listener (config.metricsPort); none when unset */
  metricsPort?: number;
  /** config.serviceToken: when set, every RPC but the health check must carry it (ServiceTokenGuard) */
  serviceToken?: string;
  /**
   * mTLS with required client certificates; default: LOUPE_GRPC_TLS_* of this process (every
   * service's main passes nothing and gets the config), null = plaintext
   */
  tls?: GrpcTls | null;
}

export interface RunningGrpcService {
  address: string;
  close(): Promise<void>;
}

const HEALTH_PROTO = path.join(PROTO_ROOT, 'grpc/health/v1/health.proto');
const SERVICE_NAMES = { capture: 'CaptureService', sae: 'SaeService', explainer: 'ExplainerService' };

/** The service's module plus what every Loupe gRPC server also serves: grpc.health.v1.Health. */
@Module({})
class GrpcServer {
  static register(spec: GrpcServiceSpec, served: string): DynamicModule {
    return {
      module: GrpcServer,
      imports: [spec.module],
      controllers: [HealthController],
      providers: [{ provide: SERVED_SERVICE, useValue: served }],
    };
  }
}

/**
 * Starts a NestJS gRPC microservice the way every Loupe service runs: package loupe.v1 plus the
 * standard health service, the shared proto-loader options, the one error filter (every error leaves
 * as a gRPC status with a clear message), the call interceptor (request ids in logs, latency metrics),
 * Nest's own logs limited to warnings, and the process's metrics listener when a port is configured.
 */
export async function startGrpcService(spec: GrpcServiceSpec): Promise<RunningGrpcService> {
  const served = `loupe.v1.${SERVICE_NAMES[spec.proto]}`;
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(GrpcServer.register(spec, served), {
    logger: ['error', 'warn'],
    transport: Transport.GRPC,
    options: {
      package: ['loupe.v1', 'grpc.health.v1'],
      protoPath: [protoFile(spec.proto), HEALTH_PROTO],
      url: spec.address,
      credentials: grpcServerCredentials(
        spec.tls === undefined ? grpcTlsFromConfig() : (spec.tls ?? undefined),
      ),
      loader: PROTO_LOADER_OPTIONS,
      maxSendMessageLength: spec.maxMessageBytes,
      maxReceiveMessageLength: spec.maxMessageBytes,
    },
  });
  app.useGlobalFilters(new GrpcErrorFilter(spec.log));
  app.useGlobalInterceptors(new GrpcCallInterceptor(spec.log));
  if (spec.serviceToken) app.useGlobalGuards(new ServiceTokenGuard(spec.serviceToken));
  app.enableShutdownHooks();
  const unregister = registerReadiness(served, spec.readiness?.(app) ?? {});
  await app.listen();
  if (spec.metricsPort !== undefined) await startMetricsListener(spec.metricsPort, spec.log);
  return {
    address: spec.address,
    close: async () => {
      unregister();
      await app.close();
    },
  };
}
