export { GrpcErrorFilter } from './grpc-error.filter.js';
