export { GrpcCallInterceptor } from './grpc-call.interceptor.js';
export { GrpcErrorFilter } from './grpc-error.filter.js';
export { type GrpcServiceSpec, type RunningGrpcService, startGrpcService } from './grpc-service.js';
export { type HealthCheckRequest, type HealthCheckResponse, HealthController } from './health.controller.js';
export { ServiceTokenGuard } from './service-token.guard.js';
