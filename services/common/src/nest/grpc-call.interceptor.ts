import { type Metadata, status } from '@grpc/grpc-js';
import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import { type Observable, tap } from 'rxjs';
import { toGrpcError } from '../grpc/status.js';
import type { Logger } from '../logging.js';
import { rpcDuration } from '../metrics/registry.js';
import { REQUEST_ID_HEADER, requestIdFrom, withRequestId } from '../request-context.js';

/**
 * Around every gRPC call a service serves: continues the caller's request id (the `x-request-id`
 * metadata the gateway and the service clients send, or a fresh one), so every log line written for
 * the call carries it, and times the call into loupe_rpc_duration_seconds.
 */
export class GrpcCallInterceptor implements NestInterceptor {
  constructor(private readonly log: Logger) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const metadata = context.switchToRpc().getContext<Metadata | undefined>();
    const requestId = requestIdFrom(metadata?.get?.(REQUEST_ID_HEADER));
    const path: string =
      context.getArgByIndex(2)?.getPath?.() ?? `/${context.getClass().name}/${context.getHandler().name}`;
    const [service = '', method = ''] = path.split('/').slice(1);
    const started = process.hrtime.bigint();
    const observe = (code: string) =>
      rpcDuration.observe({ service, method, code }, Number(process.hrtime.bigint() - started) / 1e9);
    // Nest binds the handler to the async context current when handle() is called: call it inside
    return withRequestId(requestId, () => {
      this.log.debug({ rpc: path }, 'rpc');
      return next.handle().pipe(
        tap({
          complete: () => observe('OK'),
          error: (error: unknown) => observe(status[toGrpcError(error).code] ?? 'UNKNOWN'),
        }),
      );
    });
  }
}
