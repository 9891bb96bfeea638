import { type Metadata, status } from '@grpc/grpc-js';
import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import { finalize, type Observable, tap } from 'rxjs';
import { toGrpcError } from '../grpc/status.js';
import type { Logger } from '../logging.js';
import { rpcDuration } from '../metrics/registry.js';
import { REQUEST_ID_HEADER, requestAbort, requestIdFrom, withRequestContext } from '../request-context.js';

/**
 * Around every gRPC call a service serves: continues the caller's request id (the `x-request-id`
 * metadata the gateway and the service clients send, or a fresh one), so every log line written for
 * the call carries it; gives the call's work an abort signal that fires when the caller cancels or the
 * call's deadline passes (long loops check it, and calls made onward carry both); and times the call
 * into loupe_rpc_duration_seconds.
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
    const call = context.getArgByIndex(2) as ServerCall | undefined;
    const deadline = deadlineOf(call);
    const abort = requestAbort(deadline);
    call?.on?.('cancelled', () => abort.cancel('the caller cancelled the call'));
    // Nest binds the handler to the async context current when handle() is called: call it inside
    return withRequestContext({ requestId, signal: abort.controller.signal, deadline }, () => {
      this.log.debug({ rpc: path }, 'rpc');
      return next.handle().pipe(
        tap({
          complete: () => observe('OK'),
          error: (error: unknown) => observe(status[toGrpcError(error).code] ?? 'UNKNOWN'),
        }),
        finalize(abort.release),
      );
    });
  }
}

/** What the interceptor reads of grpc-js's server call (Nest passes it as the handler's third argument). */
interface ServerCall {
  getPath?(): string;
  getDeadline?(): Date | number;
  on?(event: 'cancelled', listener: () => void): unknown;
}

/** The call's deadline in epoch ms, when the caller set one. */
function deadlineOf(call: ServerCall | undefined): number | undefined {
  const deadline = call?.getDeadline?.();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return ms !== undefined && Number.isFinite(ms) ? ms : undefined;
}
