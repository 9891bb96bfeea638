import { Metadata } from '@grpc/grpc-js';
import { type ArgumentsHost, Catch, type RpcExceptionFilter } from '@nestjs/common';
import { type Observable, throwError } from 'rxjs';
import { ERROR_CODE_METADATA_KEY, toGrpcError } from '../grpc/index.js';
import type { Logger } from '../logging.js';

/** Every error leaves as a gRPC status with a clear message; bugs are logged, never shown. */
@Catch()
export class GrpcErrorFilter implements RpcExceptionFilter<unknown> {
  constructor(private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): Observable<never> {
    const payload = toGrpcError(exception);
    if (payload.loupeCode === 'INTERNAL') {
      this.log.error({ err: exception, rpc: host.getArgByIndex(2)?.getPath?.() }, 'internal error');
    }
    const metadata = new Metadata();
    metadata.set(ERROR_CODE_METADATA_KEY, payload.loupeCode);
    return throwError(() => ({
      code: payload.code,
      message: payload.message,
      details: payload.message,
      metadata,
    }));
  }
}
