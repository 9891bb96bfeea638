import { createHash, timingSafeEqual } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import type { CanActivate, ExecutionContext } from '@nestjs/common';
import { LoupeError } from '../errors.js';
import { SERVICE_TOKEN_METADATA_KEY } from '../grpc/service-token.js';
import { HealthController } from './health.controller.js';

/**
 * With LOUPE_SERVICE_TOKEN set, every RPC must carry the same token in `loupe-service-token` metadata
 * (the clients in grpc/clients.ts send it); others get UNAUTHENTICATED before any handler runs. The
 * health service stays open so probes need no secret. Tokens are compared as sha256 digests with
 * timingSafeEqual: equal lengths, and no early exit that would tell a caller how much matched.
 */
export class ServiceTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(token: string) {
    this.expected = digest(token);
  }

  canActivate(context: ExecutionContext): boolean {
    if (context.getClass() === HealthController) return true;
    const metadata = context.switchToRpc().getContext<Metadata | undefined>();
    const presented = metadata?.get?.(SERVICE_TOKEN_METADATA_KEY)[0];
    if (typeof presented === 'string' && timingSafeEqual(digest(presented), this.expected)) return true;
    throw new LoupeError(
      presented === undefined
        ? 'this service requires the shared service token (LOUPE_SERVICE_TOKEN) in loupe-service-token metadata'
        : 'the service token is not valid: callers and services must share one LOUPE_SERVICE_TOKEN',
      'UNAUTHENTICATED',
    );
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
