import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { LoupeError } from '../errors.js';
import { checkReadiness } from '../metrics/readiness.js';

/** grpc.health.v1 messages (proto/grpc/health/v1/health.proto), as the shared loader options read them. */
export interface HealthCheckRequest {
  service: string;
}
export interface HealthCheckResponse {
  status: 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
}

/** The full name of the one Loupe service a server runs, e.g. loupe.v1.CaptureService. */
export const SERVED_SERVICE = Symbol('SERVED_SERVICE');

/**
 * The standard gRPC health service: "" (the whole server) or the served service's full name; SERVING
 * once its readiness checks pass (database reachable, model loaded…), NOT_SERVING until then; any
 * other name is NOT_FOUND, as the protocol asks.
 */
@Controller()
export class HealthController {
  constructor(@Inject(SERVED_SERVICE) private readonly served: string) {}

  @GrpcMethod('Health', 'Check')
  async check(request: HealthCheckRequest): Promise<HealthCheckResponse> {
    const name = request.service ?? '';
    if (name !== '' && name !== this.served)
      throw new LoupeError(`unknown service "${name}": this server runs ${this.served}`, 'NOT_FOUND');
    const readiness = await checkReadiness(this.served);
    return { status: readiness.ready ? 'SERVING' : 'NOT_SERVING' };
  }
}
