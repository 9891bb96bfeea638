export { GrpcErrorFilter } from './grpc-error.filter.js';
export { type GrpcServiceSpec, type RunningGrpcService, startGrpcService } from './grpc-service.js';
